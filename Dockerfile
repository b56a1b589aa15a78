FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY domain ./domain
COPY tables ./tables
COPY agents ./agents
COPY bridge ./bridge
COPY scheduling ./scheduling
RUN pip install --no-cache-dir .
USER nobody
