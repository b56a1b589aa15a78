"""The README's quick start, run verbatim against a fresh `scheduling dev` with the development secret.

The blocks marked `<!-- quickstart -->` are joined into one bash script and run in a folder whose
`.scheduling` is the running stack's data folder, as a user's second shell would be. Where the `nats`
CLI is not installed, `tests/support/nats_cli.py` stands in for `nats req` (same subjects, headers, bodies).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from conftest import ROOT, running_dev
from support.client import Client

from scheduling.run.devtoken import DEV_SECRET, mint

BLOCK = re.compile(r"<!-- quickstart -->\n```bash\n(.*?)```", re.S)


def quickstart_script() -> str:
    blocks = BLOCK.findall((ROOT / "README.md").read_text())
    assert len(blocks) >= 3, "the README lost its quick start blocks"
    return "\n".join(blocks)


def _path_with_nats(folder: Path) -> str:
    """PATH with this interpreter's scripts first and, without a real `nats` CLI, the stand-in."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    if shutil.which("nats", path=path) is None:
        shim = folder / "bin" / "nats"
        shim.parent.mkdir()
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{ROOT / "tests/support/nats_cli.py"}" "$@"\n')
        shim.chmod(0o755)
        path = f"{shim.parent}{os.pathsep}{path}"
    return path


async def test_the_readme_quick_start_books_cancels_and_reads_the_calendar() -> None:
    # an empty secret is unset for `scheduling dev`: it then uses (and announces) the development secret
    with running_dev(SCHEDULING_JWT_SECRET="") as service:
        shell = Path(tempfile.mkdtemp(prefix="scheduling-quickstart-"))
        (shell / ".scheduling").symlink_to(service.data_dir)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SCHEDULING_", "NATS_", "KAFKA_"))}
        env["PATH"] = _path_with_nats(shell)
        done = await asyncio.to_thread(
            subprocess.run,
            ["bash", "-euo", "pipefail", "-c", quickstart_script()],
            cwd=shell, env=env, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        assert '"status": "booked"' in done.stdout and '"cancellationReason": "patient request"' in done.stdout
        assert "group scheduling (scheduling-commands): Stable, 1 member(s)" in done.stdout

        announced = (service.data_dir / "dev.log").read_text()
        assert "using the development secret" in announced
        for what in ("the Kafka-protocol broker (Tansu)", "NATS with JetStream", "PostgreSQL"):
            assert f"starting {what} ..." in announced and f"{what} is up at" in announced
        headers = {"Authorization": f"Bearer {mint('clinic-1', ['scheduling:read'], DEV_SECRET)}"}
        async with Client(service) as client:
            for patient, provider in (("p-1001", "Practitioner/dr-grey"), ("p-1002", "Practitioner/dr-house")):
                status, body, _ = await client.get(f"/patients/{patient}/appointments", headers=headers)
                assert status == 200
                assert [(a["providerId"], a["status"]) for a in body["data"]] == [(provider, "cancelled")]
            status, schedules, _ = await client.get("/schedules", headers=headers)
            assert status == 200 and {s["actor"]["reference"] for s in schedules["data"]} == {
                "Practitioner/dr-grey", "Practitioner/dr-house"
            }  # fmt: skip
