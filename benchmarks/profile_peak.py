"""Where a booking's CPU goes at peak: CPU per booking of each role and a py-spy profile of each.

Starts `scheduling dev`, opens slots (as `side_by_side.py` does), warms up, then books them at a fixed
concurrency while py-spy samples the worker, the bridge and the projector; prints CPU milliseconds per
booking for each role and for the embedded broker, NATS and PostgreSQL, and each profile's hottest
functions (own time and with callees). The raw profiles (collapsed stacks, for a flame graph) are left in
the output folder. Needs `pip install -e '.[bench]'`.

    python benchmarks/profile_peak.py [--bookings 1000] [--clients 50] [--seconds 15] [--out /tmp/profile]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import tempfile
import urllib.request
from collections import Counter
from pathlib import Path

import jwt
import nats
import psutil
from command_bench import SECRET, start_service
from side_by_side import _booker, run_bookings, service_slots

ROLES = ("worker", "bridge", "projector")
#: the service's own code, below the processes' entry points (py-spy names frames "function (path:line)")
OURS = ("domain/", "agents/", "tables/", "bridge/", "scheduling/core/", "scheduling/streams/", "scheduling/readmodel/")


def roles(dev: int) -> dict[str, psutil.Process]:
    found = {}
    for child in psutil.Process(dev).children(recursive=True):
        command = child.cmdline()
        if command[-2:-1] == ["scheduling"] and command[-1] in ROLES:
            found[command[-1]] = child
    return found


#: the embedded services, by a part of their executable's name: CPU only (no Python to sample)
SERVICES = {"broker": "tansu", "nats": "nats-server", "postgres": "postgres"}


def service_cpu(dev: int) -> dict[str, dict[int, float]]:
    """CPU seconds so far of each embedded service's processes (PostgreSQL has one per connection)."""
    found: dict[str, dict[int, float]] = {name: {} for name in SERVICES}
    for child in psutil.Process(dev).children(recursive=True):
        try:
            executable = Path(child.cmdline()[0]).name if child.cmdline() else child.name()
            for name, part in SERVICES.items():
                if part in executable or child.name().startswith(part):
                    found[name][child.pid] = cpu(child)
        except psutil.Error:
            continue
    return found


def cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def hottest(path: Path, top: int) -> list[str]:
    """The functions with most samples, own time and with callees (py-spy's raw format: stack count)."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames, n = stack.split(";"), int(count)
        samples += n
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    lines = [f"  own  {n / samples:6.1%} {f}" for f, n in own.most_common(top)]
    ours = [(f, n) for f, n in total.most_common() if f.rpartition("(")[2].startswith(OURS)]
    return lines + [f"  with {n / samples:6.1%} {f}" for f, n in ours[:top]]


def batch_totals(http: str) -> tuple[float, float]:
    """The worker's commands made durable and durable steps so far (`scheduling_batch_commands`)."""
    text = urllib.request.urlopen(f"{http}/metrics", timeout=10).read().decode()
    total = {"sum": 0.0, "count": 0.0}
    for line in text.splitlines():
        for part in total:
            if line.startswith(f"scheduling_batch_commands_{part} "):
                total[part] = float(line.split()[1])
    return total["sum"], total["count"]


async def measure(args: argparse.Namespace, ready: dict[str, str], dev: int) -> None:
    token = jwt.encode({"tenant": "bench", "sub": "bench", "scope": "scheduling:read scheduling:write"}, SECRET)
    nc = await nats.connect(ready["nats"])
    book = _booker(nc, "scheduling.cmd.appointment.book", token)
    slots = await service_slots(ready["http"], nc, token, args.bookings)
    await run_bookings(book, await service_slots(ready["http"], nc, token, 100), args.clients)  # warm up
    processes = roles(dev)
    before = {role: cpu(p) for role, p in processes.items()}
    batches_before = batch_totals(ready["http"])
    services_before = service_cpu(dev)
    samplers = [
        await asyncio.create_subprocess_exec(
            "py-spy",
            "record",
            "-p",
            str(p.pid),
            "-d",
            str(args.seconds),
            "-f",
            "raw",
            "-o",
            str(args.out / f"{role}.txt"),
            "--nonblocking",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        for role, p in processes.items()
    ]
    result = await run_bookings(book, slots, args.clients)
    services_after = service_cpu(dev)
    for sampler in samplers:
        await sampler.wait()
    await nc.close()
    print(f"{args.bookings} bookings, {args.clients} clients: {result.cell()}")
    (commands_after, steps_after), (commands_before, steps_before) = batch_totals(ready["http"]), batches_before
    commands, steps = commands_after - commands_before, steps_after - steps_before
    print(f"{steps:.0f} durable steps for {commands:.0f} commands: {commands / max(steps, 1):.1f} commands per step")
    for role, process in processes.items():
        print(f"{role:10} {(cpu(process) - before[role]) / args.bookings * 1000:6.2f} ms CPU per booking")
    for name, after in services_after.items():
        spent = sum(seconds - services_before[name].get(pid, 0.0) for pid, seconds in after.items())
        print(f"{name:10} {spent / args.bookings * 1000:6.2f} ms CPU per booking (not sampled)")
    for role in processes:
        print(f"\n{role} (first {args.seconds} s of the run):")
        print("\n".join(hottest(args.out / f"{role}.txt", args.top)))
    load = os.getloadavg()
    print(f"\n{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1, 5, 15 min)")


def main(args: argparse.Namespace) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    process, ready = start_service(Path(tempfile.mkdtemp(prefix="profile-")))
    try:
        asyncio.run(measure(args, ready, process.pid))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bookings", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "profile")
    main(parser.parse_args())
