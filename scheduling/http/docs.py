"""`GET /docs`: Swagger UI over `/openapi.json`, served from the `swagger-ui-py` package's assets.

The assets ship with the package (no CDN) and the online validator badge is off, so the page works on a
closed network. Swagger UI 5 reads
OpenAPI 3.1; its Authorize button takes the bearer token of the document's `securitySchemes`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from aiohttp import web

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Clinic scheduling API</title>
  <link rel="icon" href="/docs/static/favicon-32x32.png">
  <link rel="stylesheet" href="/docs/static/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/static/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "/openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      displayOperationId: true,
      docExpansion: "list",
      validatorUrl: null,
    });
  </script>
</body>
</html>
"""


def assets() -> Path:
    """The folder of Swagger UI's static files inside the installed package, found without importing it."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the swagger-ui-py package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


async def page(request: web.Request) -> web.Response:
    return web.Response(text=PAGE, content_type="text/html")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/docs", page)
    router.add_static("/docs/static", assets())
