"""Restart time and memory as the history grows: the worker's tables on disk against in memory.

For each store (`disk`: RocksDB under SCHEDULING_STATE_DIR, the default; `memory`: Faust's in-memory
store, the design before), starts `scheduling dev`, books up to each checkpoint, then reads the worker's
RSS, SIGKILLs it (`scheduling dev` restarts it, as an orchestrator would) and times the kill until a new
booking is answered. Prints one table with the ratio disk/memory per checkpoint and the machine's load.

    python benchmarks/growth.py [--checkpoints 1000,10000,100000] [--stores disk,memory] [--memory-up-to 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import nats
from command_bench import SECRET, start_service
from side_by_side import run_bookings, service_slots

CLIENTS = 100


@dataclass
class Point:
    bookings: int
    rss_mb: float
    restart_s: float
    rss_after_mb: float
    rate: float


def worker_pid(parent: int) -> int:
    """The `scheduling worker` child of `scheduling dev` (there is one at a time)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))
        if ppid == parent and b"worker" in cmdline[-2:]:
            return int(entry.name)
    raise RuntimeError("no worker process")


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))) / 1024


async def answered_after_kill(nc: Any, token: str, slot: str, pid: int) -> float:
    """SIGKILL the worker, then the seconds until one booking is answered (the same command retried)."""
    headers = {"Authorization": f"Bearer {token}"}
    body = json.dumps({"slotId": slot, "patientId": "restart-probe", "commandId": uuid.uuid4().hex}).encode()
    os.kill(pid, signal.SIGKILL)
    killed = time.perf_counter()
    while True:
        try:
            msg = await nc.request("scheduling.cmd.appointment.book", body, timeout=1.0, headers=headers)
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
            continue
        reply = json.loads(msg.data)
        if reply.get("ok"):
            return time.perf_counter() - killed
        if reply["error"]["code"] == "UNAVAILABLE":  # its saga still runs: asked again, as a caller would
            continue
        raise RuntimeError(f"the probe booking was refused: {msg.data[:300]!r}")


async def grow(ready: dict[str, str], parent: int, checkpoints: list[int]) -> list[Point]:
    token = jwt.encode({"tenant": "bench", "sub": "bench", "scope": "scheduling:read scheduling:write"}, SECRET)
    nc = await nats.connect(ready["nats"])
    headers = {"Authorization": f"Bearer {token}"}

    async def book(slot: str, patient: str) -> dict[str, Any]:
        body = json.dumps({"slotId": slot, "patientId": patient}).encode()
        msg = await nc.request("scheduling.cmd.appointment.book", body, timeout=60, headers=headers)
        reply: dict[str, Any] = json.loads(msg.data)
        return reply

    points: list[Point] = []
    done = 0
    try:
        for target in checkpoints:
            started = time.perf_counter()
            slots = await service_slots(ready["http"], nc, token, target - done + 1)
            result = await run_bookings(book, slots[:-1], CLIENTS)
            rate = result.rate
            done = target
            pid = worker_pid(parent)
            before = rss_mb(pid)
            restart = await answered_after_kill(nc, token, slots[-1], pid)
            after = rss_mb(worker_pid(parent))
            points.append(Point(target, before, restart, after, rate))
            print(f"  {target:>7,} bookings: rss {before:6.0f} MB, restart {restart:5.1f} s, rss after {after:6.0f} MB,"
                  f" {rate:5.0f} bookings/s ({time.perf_counter() - started:.0f} s)", flush=True)  # fmt: skip
    finally:
        await nc.close()
    return points


def run_store(store: str, checkpoints: list[int]) -> list[Point]:
    print(f"store {store}:", flush=True)
    if store == "memory":
        os.environ["SCHEDULING_STATE_DIR"] = ""
    else:
        os.environ.pop("SCHEDULING_STATE_DIR", None)
    process, ready = start_service(Path(tempfile.mkdtemp(prefix=f"growth-{store}-")))
    try:
        return asyncio.run(grow(ready, process.pid, checkpoints))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(120)


def main(args: argparse.Namespace) -> None:
    checkpoints = [int(c) for c in args.checkpoints.split(",")]
    results = {
        store: run_store(store, [c for c in checkpoints if store == "disk" or c <= args.memory_up_to])
        for store in args.stores.split(",")
    }
    print(f"\n{'bookings':>9} " + " ".join(f"{s + ' restart':>15} {s + ' RSS':>12}" for s in results))
    for i, target in enumerate(checkpoints):
        cells = " ".join(f"{r[i].restart_s:13.1f} s {r[i].rss_mb:9.0f} MB" for r in results.values() if i < len(r))
        print(f"{target:>9,} {cells}")
    for store, points in results.items():
        if len(points) > 1:
            first, last = points[0], points[-1]
            rss, restart = last.rss_mb / first.rss_mb, last.restart_s / first.restart_s
            print(f"{store}: at {last.bookings:,} against {first.bookings:,}: RSS x{rss:.2f}, restart x{restart:.2f}")
    load = os.getloadavg()
    print(f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1, 5, 15 min)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoints", default="1000,10000,100000")
    parser.add_argument("--stores", default="disk,memory")
    parser.add_argument("--memory-up-to", type=int, default=10_000, help="the in-memory store's last checkpoint")
    main(parser.parse_args())
