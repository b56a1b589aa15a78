"""The floor under any Faust design on this machine: what a bare agent costs per record it writes.

Issue 10 asks the service to book as fast as a lock-based peer. This measures what Faust and the embedded
broker cost before any domain code runs: an agent with the worker's settings (tables in RocksDB, the
broker guards) that, for each input message, writes `--writes` table keys and sends one output record,
nothing awaited (Faust's own fastest way, less durable than the actor's protocol). It prints messages and
records per second and the CPU per message of the agent's process and of the broker; fitted over the runs, the
cost of a message taken and answered and of each further table write, and from them the best booking rate any
design of this shape could reach for a booking of `--booking-messages` commands and `--booking-writes` writes.

    python benchmarks/faust_floor.py [--messages 5000] [--writes 0 4 8] [--booking-messages 3] [--booking-writes 15]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from scheduling.run.stack import Stack

#: the agent's process: one Faust worker with the service's settings for the embedded broker
AGENT = """
import logging
import sys
import faust
from scheduling.streams import broker_guards

logging.disable(logging.INFO)  # as quiet as the worker: "-l warn" left aiokafka's debug records on

broker_guards.install()
bootstrap, state_dir, writes, topic_in, topic_out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
app = faust.App(
    "floor-" + topic_in, broker=f"kafka://{bootstrap}", store="rocksdb://", datadir=state_dir, web_enabled=False,
    topic_partitions=4, processing_guarantee="at_least_once", producer_acks=-1, broker_session_timeout=3,
    broker_heartbeat_interval=0.5, table_standby_replicas=0, producer_linger=float(sys.argv[6]),
)
source = app.topic(topic_in, key_type=bytes, value_type=bytes, value_serializer="raw", partitions=4)
sink = app.topic(topic_out, key_type=bytes, value_type=bytes, value_serializer="raw", partitions=4)
table = app.Table("floor", partitions=4, key_type=str)

@app.agent(source)
async def agent(stream):
    async for key, value in stream.items():
        for i in range(writes):
            table[f"{key!r}:{i}"] = {"version": 1, "data": "x" * 200}
        await sink.send(key=key, value=value)

sys.argv = [sys.argv[0], "worker", "-l", "warn"]
app.main()
"""


def start_agent(bootstrap: str, folder: Path, writes: int, linger: float) -> tuple[subprocess.Popen[bytes], str, str]:
    """The agent's process on fresh topics: (process, input topic, output topic); its log beside the broker's."""
    topic_in, topic_out = f"floor-in-{uuid.uuid4().hex[:6]}", f"floor-out-{uuid.uuid4().hex[:6]}"
    script = folder / "agent.py"
    script.write_text(AGENT)
    with open(folder / f"{topic_in}.log", "wb") as log:
        agent = subprocess.Popen(
            [sys.executable, str(script), bootstrap, str(folder / topic_in), str(writes), topic_in, topic_out,
             str(linger)],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
        )  # fmt: skip
    return agent, topic_in, topic_out


async def run_once(
    bootstrap: str, agent: subprocess.Popen[bytes], topic_in: str, topic_out: str, messages: int
) -> dict[str, float]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    consumer = AIOKafkaConsumer(topic_out, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                fetch_max_wait_ms=50)  # fmt: skip
    await producer.start()
    await consumer.start()
    try:
        # warm up until the agent answers (its group joined, its tables ready)
        while True:
            if agent.poll() is not None:
                raise RuntimeError(f"the agent exited ({agent.returncode}): see its log beside the broker's")
            await producer.send_and_wait(topic_in, b"warm-up", key=b"warm-up")
            batch = await consumer.getmany(timeout_ms=2000)
            if any(batch.values()):
                break
        agent_process = psutil.Process(agent.pid)
        cpu_before = sum(agent_process.cpu_times()[:2])
        started = time.perf_counter()
        sends = [await producer.send(topic_in, b"x" * 200, key=f"k{n}".encode()) for n in range(messages)]
        await asyncio.gather(*sends)
        seen = 0
        while seen < messages:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                seen += sum(1 for r in records if r.key != b"warm-up")
        elapsed = time.perf_counter() - started
        cpu = sum(agent_process.cpu_times()[:2]) - cpu_before
    finally:
        await producer.stop()
        await consumer.stop()
    return {"rate": messages / elapsed, "agent_ms": cpu / messages * 1000, "elapsed": elapsed}


def main(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="faust-floor-"))
    stack = Stack(folder)
    try:
        bootstrap = stack.start_kafka()
        broker = psutil.Process(stack.services[0].process.pid)
        print(f"{args.messages} messages per run; each writes N table keys and sends one record (not awaited)")
        print(f"{'N':>3} {'messages/s':>11} {'records/s':>10} {'agent ms/msg':>15} {'broker ms/msg':>16}")
        costs: list[tuple[int, float]] = []
        for writes in args.writes:
            broker_before = sum(broker.cpu_times()[:2])
            agent, topic_in, topic_out = start_agent(bootstrap, folder, writes, args.linger)
            try:
                result = asyncio.run(run_once(bootstrap, agent, topic_in, topic_out, args.messages))
            finally:
                agent.terminate()
                agent.wait(30)
            broker_ms = (sum(broker.cpu_times()[:2]) - broker_before) / args.messages * 1000
            costs.append((writes, result["agent_ms"] + broker_ms))
            print(f"{writes:>3} {result['rate']:>11.0f} {result['rate'] * (writes + 1):>10.0f}"
                  f" {result['agent_ms']:>15.2f} {broker_ms:>16.2f}")  # fmt: skip
        (n0, c0), (n1, c1) = costs[0], costs[-1]
        per_write = (c1 - c0) / (n1 - n0)
        per_message = c0 - n0 * per_write
        booking = args.booking_messages * per_message + args.booking_writes * per_write
        cores = os.cpu_count() or 1
        print(
            f"\nCPU (agent and broker): {per_message:.2f} ms per message taken and answered, {per_write:.2f} ms per"
            f" further table write. A booking ({args.booking_messages} commands, {args.booking_writes} table writes"
            f" and further records) costs at least {booking:.1f} ms: at most {cores * 1000 / booking:.0f} bookings/s"
            f" on {cores} cores for this shape, before any domain code, the bridge, the projector and PostgreSQL"
        )
    finally:
        stack.stop()
    load = os.getloadavg()
    print(f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1, 5, 15 min)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--writes", type=int, nargs="+", default=[0, 4, 8])
    parser.add_argument("--linger", type=float, default=0.0, help="Faust's producer_linger, seconds (the worker's: 0)")
    parser.add_argument("--booking-messages", type=int, default=3, help="commands a booking takes (docs/write-path.md)")
    parser.add_argument(
        "--booking-writes",
        type=int,
        default=15,
        help="its table writes and records beyond one per command (docs/benchmarks.md)",
    )
    main(parser.parse_args())
