"""`scheduling dev | worker | bridge | projector` (CONTRACT section 8), `token | status` (section 9)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import signal
import sys
import time
import urllib.error
import urllib.request
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import nats

from scheduling.core.config import Settings
from scheduling.run import devtoken, roles, stack, status, worker
from scheduling.run.devtoken import DEV_SECRET
from scheduling.streams import kafka

RESTART_BACKOFF = 2.0
#: start-up taking longer than this says what it still waits for, this often
PROGRESS_EVERY = 3.0


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="scheduling", description="Clinic appointment scheduling service")
    sub = parser.add_subparsers(dest="role", required=True)
    dev = sub.add_parser("dev", help="embedded stack + every role, in the foreground")
    dev.add_argument("--data-dir", default=".scheduling", type=Path)
    for role in ("worker", "bridge", "projector"):
        sub.add_parser(role, help=f"run the {role} against external services")
    token = sub.add_parser("token", help="print a development JWT (HS256)")
    token.add_argument("--tenant", required=True)
    token.add_argument(
        "--scope", action="append", default=[], choices=devtoken.SCOPES,
        help=f"repeatable; default: {' '.join(devtoken.DEFAULT_SCOPES)}",
    )  # fmt: skip
    token.add_argument("--patient", help="makes a patient token (claim patient_id)")
    token.add_argument("--secret", help="sign with this HS256 secret instead of the development one")
    token.add_argument("--hours", type=float, default=devtoken.DEFAULT_HOURS, help="validity (default 12)")
    state = sub.add_parser("status", help="consumer groups, partition owners, lag and the busiest resources")
    state.add_argument("--kafka", help="bootstrap host:port (default: KAFKA_BROKER_URL)")
    state.add_argument("--nats", help="NATS URL, for the workers' own views (default: NATS_URL)")
    state.add_argument("--json", action="store_true", help="the same report as GET /ops/partitions")
    args = parser.parse_args(argv)
    if args.role == "token":
        sys.exit(print_token(args))
    if args.role == "status":
        sys.exit(status.main(args.kafka, args.nats, as_json=args.json))
    _logging()
    if args.role == "dev":
        sys.exit(run_dev(args.data_dir))
    if args.role == "worker":
        worker.run(Settings())
        return
    runner = roles.run_bridge if args.role == "bridge" else roles.run_projector
    asyncio.run(runner(Settings()))


def print_token(args: argparse.Namespace) -> int:
    try:
        secret = devtoken.signing_secret(args.secret, os.environ)
        print(devtoken.mint(args.tenant, args.scope, secret, patient=args.patient, hours=args.hours))
    except devtoken.Refused as refused:
        print(f"scheduling token: {refused}", file=sys.stderr)
        return 2
    return 0


def _probe(nats_url: str, secret: str) -> bool:
    """A command that travels the whole path (bridge, actor, outbox, projector, reply) and changes nothing."""
    warnings.filterwarnings("ignore", category=jwt.InsecureKeyLengthWarning)

    async def probe() -> bool:
        nc = await nats.connect(nats_url)
        try:
            token = jwt.encode(
                {"tenant": "scheduling-probe", "sub": "scheduling-dev", "scope": "scheduling:write"}, secret
            )
            body = json.dumps({"appointmentId": "probe", "commandId": f"probe-{uuid.uuid4().hex}"}).encode()
            msg = await nc.request(
                "scheduling.cmd.appointment.check-in", body, timeout=2, headers={"Authorization": f"Bearer {token}"}
            )
            return bool(json.loads(msg.data).get("error", {}).get("code") == "APPOINTMENT_NOT_FOUND")
        except Exception:
            return False
        finally:
            await nc.close()

    return asyncio.run(probe())


def _http_ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def waiting_for(port: int, nats_url: str) -> str:
    """What the start-up still waits for, in words: the worker's failing readiness checks and table recovery."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
            body = json.load(response)
    except urllib.error.HTTPError as not_ready:  # 503 while a check fails
        body = json.load(not_ready)
    except (OSError, ValueError):
        return "the worker's HTTP view is not up yet"
    pending = [name for name, ok in body.get("checks", {}).items() if not ok] or ["the first command's round trip"]
    recovering = [w for w in asyncio.run(status.workers(nats_url)) if not w.get("tablesRecovered")]
    if recovering:
        left = sum(int(w.get("recoveryRemaining") or 0) for w in recovering)
        return f"{', '.join(pending)}; table recovery: {left} changelog records left"
    return ", ".join(pending)


def supervise(
    services: Any, roles: dict[str, Any], envs: dict[str, dict[str, str]], stopping: Callable[[], bool]
) -> None:
    """Restart a role that died (as an orchestrator would), at most once every RESTART_BACKOFF seconds, with the
    environment it was started with (its own metrics port included)."""
    log = logging.getLogger("scheduling.dev")
    last_start = {role: time.monotonic() for role in roles}
    while not stopping():
        for role, service in list(roles.items()):
            if service.process.poll() is None or time.monotonic() - last_start[role] < RESTART_BACKOFF:
                continue
            log.error("%s exited with %s; restarting it", role, service.process.returncode)
            services.services.remove(service)
            roles[role] = services.spawn_role(role, envs[role])
            last_start[role] = time.monotonic()
        time.sleep(0.2)


def run_dev(data_dir: Path) -> int:
    log = logging.getLogger("scheduling.dev")
    kafka_url = os.environ.get("KAFKA_BROKER_URL")
    if not kafka_url:
        # the embedded broker keeps everything in memory: start the read model and streams empty to match
        for leftover in ("pgdata", "nats", "worker"):
            shutil.rmtree(data_dir / leftover, ignore_errors=True)
    secret = os.environ.get("SCHEDULING_JWT_SECRET")
    if not secret and not os.environ.get("SCHEDULING_JWT_PUBLIC_KEY"):
        secret = DEV_SECRET
        log.warning("SCHEDULING_JWT_SECRET is not set: using the development secret %r (HS256)", DEV_SECRET)
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    ready_env = data_dir / "ready.env"
    ready_env.unlink(missing_ok=True)
    services = stack.start(
        data_dir, kafka=kafka_url, nats=os.environ.get("NATS_URL"), postgres=os.environ.get("DATABASE_URL")
    )
    try:
        port = int(os.environ.get("SCHEDULING_HTTP_PORT") or stack.free_port())
        env = {
            "KAFKA_BROKER_URL": services.kafka,
            "NATS_URL": services.nats,
            "DATABASE_URL": services.postgres,
            "SCHEDULING_HTTP_PORT": str(port),
            # the worker's tables on disk: a restarted worker reads only the changelog's tail
            "SCHEDULING_STATE_DIR": os.environ.get("SCHEDULING_STATE_DIR", str((data_dir / "worker").resolve())),
        }
        if secret:
            env["SCHEDULING_JWT_SECRET"] = secret
        if not kafka_url:
            env["SCHEDULING_BROKER"] = "tansu"
        os.environ.update(env)
        asyncio.run(kafka.ensure_topics(Settings()))
        # the bridge and the projector serve what they count (dead letters, parked records) on their own port
        metrics_ports = {role: stack.free_port() for role in ("projector", "bridge")}
        envs = {role: {**env, "SCHEDULING_METRICS_PORT": str(metrics_ports[role])} for role in metrics_ports}
        envs["worker"] = env
        log.info("starting the roles: projector, bridge, worker (logs in %s)", data_dir)
        roles = {role: services.spawn_role(role, envs[role]) for role in ("projector", "bridge", "worker")}
        started = time.monotonic()
        deadline, progress_at = started + 120, started + PROGRESS_EVERY
        while not stopping:
            if any(r.process.poll() is not None for r in roles.values()):
                log.error("a role exited during start-up; see the logs in %s", data_dir)
                return 1
            if _http_ready(port) and _probe(services.nats, secret or ""):
                break
            if time.monotonic() > deadline:
                log.error("not ready after 120 s; see the logs in %s", data_dir)
                return 1
            if time.monotonic() > progress_at:
                log.info("waiting %.0f s for: %s", time.monotonic() - started, waiting_for(port, services.nats))
                progress_at = time.monotonic() + PROGRESS_EVERY
            time.sleep(0.2)
        if not stopping:
            http = f"http://127.0.0.1:{port}"
            bridge_metrics = f"http://127.0.0.1:{metrics_ports['bridge']}"
            projector_metrics = f"http://127.0.0.1:{metrics_ports['projector']}"
            # for a second shell: `. .scheduling/ready.env` (README, quick start); written before the ready line,
            # so whoever reads that line finds the file
            ready_env.write_text(
                f"API={http}\nNATS={services.nats}\nKAFKA={services.kafka}\n"
                f"BRIDGE_METRICS={bridge_metrics}\nPROJECTOR_METRICS={projector_metrics}\n"
            )
            print(
                f"ready http={http} nats={services.nats} kafka={services.kafka} postgres={services.postgres}",
                flush=True,
            )
            log.info("metrics: worker %s/metrics, bridge %s/metrics, projector %s/metrics",
                     http, bridge_metrics, projector_metrics)  # fmt: skip
        supervise(services, roles, envs, lambda: stopping)
        return 0
    finally:
        ready_env.unlink(missing_ok=True)
        services.stop()


if __name__ == "__main__":
    main()
