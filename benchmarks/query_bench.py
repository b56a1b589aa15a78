"""Query benchmark: SearchAvailableSlots and GetCalendarView over a clinic-sized read model.

Loads 100 providers x 90 days of 15-minute slots (08:00-16:00 UTC, 32 a day: 288,000 slots) and a share of
booked appointments straight into the PostgreSQL read model (COPY, rows shaped exactly as the projector writes
them: `scheduling.readmodel.projector._row` over the domain models), on an embedded PostgreSQL started by
`scheduling.run.stack.Stack.start_postgres()` and migrated by `scheduling.readmodel.db.migrate`. The HTTP view
(`scheduling.http.view.build`, the production routes and query functions) runs in a child process on loopback; a
client in this process sends a fixed number of requests at 1, 10 and 50 concurrent clients and prints p50/p99
latency. It stops by itself and removes its data folder unless `--keep` is given.

    python benchmarks/query_bench.py [--requests 1000] [--explain docs/queries-explain.txt]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import asyncpg  # noqa: E402
import jwt  # noqa: E402

from domain.ids import mint, resource_token  # noqa: E402
from domain.model import (  # noqa: E402
    Actor,
    ActorType,
    Appointment,
    Entity,
    Participant,
    Period,
    Schedule,
    Slot,
    SlotStatus,
)
from domain.status import AppointmentStatus  # noqa: E402
from scheduling.readmodel import db  # noqa: E402
from scheduling.readmodel.projector import _row  # noqa: E402
from scheduling.run.stack import Stack, free_port  # noqa: E402

TENANT = "bench"
SECRET = "benchmark-secret-that-is-long-enough-for-hs256"
FIRST_DAY = datetime(2027, 1, 4, tzinfo=UTC)
SLOT = timedelta(minutes=15)
SLOTS_PER_DAY = 32  # 08:00-16:00
FACILITY_SIZE = 10  # providers per facility

COLUMNS = {
    "schedules": ("id", "tenant_id", "actor_reference", "location_id", "version", "data"),
    "slots": (
        "id", "tenant_id", "schedule_id", "provider_id", "location_id", "status", "start_at", "end_at", "version",
        "data",
    ),
    "appointments": (
        "id", "tenant_id", "patient_id", "provider_id", "location_id", "status", "start_at", "end_at", "version",
        "data",
    ),
}  # fmt: skip


def provider(i: int) -> str:
    return f"Practitioner/bench-{i:03d}"


def facility(i: int) -> str:
    return f"facility-{i // FACILITY_SIZE:02d}"


def generate(providers: int, days: int, booked_share: float, seed: int) -> Iterator[Entity]:
    """Every schedule, slot and appointment of the data set."""
    rng = random.Random(seed)
    horizon = Period(start=FIRST_DAY, end=FIRST_DAY + timedelta(days=days))
    for p in range(providers):
        actor = Actor(reference=provider(p), type=ActorType.PRACTITIONER)
        token = resource_token(TENANT, actor.reference)
        schedule = Schedule(
            id=mint("sc", token, TENANT, f"bench-{p}"),
            tenant_id=TENANT,
            actor=actor,
            location_id=facility(p),
            service_type="general-practice",
            planning_horizon=horizon,
        )
        yield schedule
        for d in range(days):
            day = FIRST_DAY + timedelta(days=d, hours=8)
            for n in range(SLOTS_PER_DAY):
                start = day + n * SLOT
                slot = Slot(
                    id=mint("sl", token, schedule.id, start.isoformat(), (start + SLOT).isoformat()),
                    tenant_id=TENANT,
                    schedule_id=schedule.id,
                    start=start,
                    end=start + SLOT,
                    provider_id=actor.reference,
                    location_id=schedule.location_id,
                    service_type=schedule.service_type,
                )
                if rng.random() < booked_share:
                    roll = rng.random()
                    status = (
                        AppointmentStatus.CANCELLED
                        if roll < 0.05
                        else AppointmentStatus.FULFILLED
                        if roll < 0.15
                        else AppointmentStatus.BOOKED
                    )
                    patient = f"pat-{rng.randrange(20_000):05d}"
                    appointment = Appointment(
                        id=mint("ap", token, TENANT, slot.id),
                        tenant_id=TENANT,
                        status=status,
                        slot_id=slot.id,
                        start=slot.start,
                        end=slot.end,
                        service_type=schedule.service_type,
                        participants=[
                            Participant(actor=actor),
                            Participant(actor=Actor(reference=f"Patient/{patient}", type=ActorType.PATIENT)),
                        ],
                        patient_id=patient,
                        provider_id=actor.reference,
                        location_id=schedule.location_id,
                        version=2 if status is AppointmentStatus.CANCELLED else 1,
                    )
                    yield appointment
                    if status is not AppointmentStatus.CANCELLED:
                        slot = slot.model_copy(update={"status": SlotStatus.BUSY, "version": 2})
                yield slot


async def load(dsn: str, providers: int, days: int, booked_share: float, seed: int) -> dict[str, int]:
    """COPY the data set into the read model in batches; returns the row count per table."""
    table_of = {"schedule": "schedules", "slot": "slots", "appointment": "appointments"}
    conn = await asyncpg.connect(dsn)
    # COPY is binary: jsonb's binary form is a version byte (1) and the JSON text
    await conn.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        format="binary",
        encoder=lambda value: b"\x01" + json.dumps(value).encode(),
        decoder=lambda raw: json.loads(raw[1:]),
    )
    counts = dict.fromkeys(COLUMNS, 0)
    batches: dict[str, list[tuple[Any, ...]]] = {t: [] for t in COLUMNS}

    async def flush(table: str) -> None:
        await conn.copy_records_to_table(table, records=batches[table], columns=COLUMNS[table])
        counts[table] += len(batches[table])
        batches[table].clear()

    try:
        for entity in generate(providers, days, booked_share, seed):
            table = table_of[entity.kind]
            batches[table].append(_row(entity))
            if len(batches[table]) >= 20_000:
                await flush(table)
        for table in COLUMNS:
            await flush(table)
        await conn.execute("VACUUM ANALYZE schedules, slots, appointments")
    finally:
        await conn.close()
    return counts


# --- the HTTP view in a child process ------------------------------------------------------------


def serve(dsn: str, port: int, ready: Any, stop: Any) -> None:
    """Child process: the production HTTP view over a pool like the worker's; commands are not used here."""
    from aiohttp import web

    from scheduling.core.config import Settings
    from scheduling.http import view as http

    async def main() -> None:
        pool = await db.pool(dsn)  # the worker's pool settings (scheduling.run.ports.connect)
        settings = Settings(database_url=dsn, jwt_secret=SECRET)

        async def no_readiness() -> dict[str, bool]:
            return {"database": True}

        # query routes never touch NATS: a stand-in keeps the benchmark to PostgreSQL and the view
        app = http.build(settings, pool, object(), no_readiness)  # type: ignore[arg-type]
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        ready.set()
        await asyncio.to_thread(stop.wait)
        await runner.cleanup()
        await pool.close()

    asyncio.run(main())


# --- the load ------------------------------------------------------------------------------------


def workloads(providers: int, days: int, rng: random.Random, n: int) -> dict[str, list[str]]:
    """n request paths per query kind, with random providers, facilities and days (fixed by the seed)."""

    def day(span: int) -> dict[str, str]:
        start = FIRST_DAY + timedelta(days=rng.randrange(days - span + 1))
        return {"from": start.isoformat(), "to": (start + timedelta(days=span)).isoformat()}

    facilities = sorted({facility(p) for p in range(providers)})
    kinds = {
        "slots: provider, 7 days": lambda: ("/slots", {"providerId": provider(rng.randrange(providers)), **day(7)}),
        "slots: location, 1 day": lambda: ("/slots", {"locationId": rng.choice(facilities), **day(1)}),
        "calendar: facility, 1 day": lambda: ("/calendar", {"facilityId": rng.choice(facilities), **day(1)}),
        "calendar: provider, 7 days": lambda: (
            "/calendar",
            {"providerId": provider(rng.randrange(providers)), **day(7)},
        ),
    }
    out: dict[str, list[str]] = {}
    for name, make in kinds.items():
        out[name] = []
        for _ in range(n):
            path, params = make()
            out[name].append(f"{path}?{urlencode(params)}")
    return out


async def run_level(base: str, paths: list[str], concurrency: int, token: str) -> tuple[list[float], float, int]:
    """Send every path once with `concurrency` clients; latencies in ms, wall time in s, items returned."""
    latencies: list[float] = []
    items = 0
    queue: asyncio.Queue[str] = asyncio.Queue()
    for p in paths:
        queue.put_nowait(p)
    headers = {"Authorization": f"Bearer {token}"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(base, connector=connector, timeout=timeout, headers=headers) as session:

        async def client() -> None:
            nonlocal items
            while True:
                try:
                    path = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                started = time.perf_counter()
                async with session.get(path) as response:
                    body = await response.json()
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status != 200:
                    raise RuntimeError(f"{path}: {response.status} {body}")
                items += len(body["data"])

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return latencies, wall, items


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def _literal(value: Any) -> str:
    if isinstance(value, datetime):
        return f"'{value.isoformat()}'::timestamptz"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


async def explain(dsn: str, providers: int) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the two queries' statements as the view runs them.

    asyncpg prepares every statement, and after five executions PostgreSQL may switch a prepared statement to
    a generic plan (parameters shown as $n); so each statement is PREPAREd and EXECUTEd six times first.
    """
    from scheduling.readmodel import queries

    conn = await asyncpg.connect(dsn)
    text: list[str] = []
    try:
        start = FIRST_DAY + timedelta(days=30)
        one, week = start + timedelta(days=1), start + timedelta(days=7)
        p, f = provider(42 % providers), facility(42 % providers)
        cases = [
            ("SearchAvailableSlots by provider, 7 days", queries.search_slots_sql(True, False), [p, start, week]),
            ("SearchAvailableSlots by location, 1 day", queries.search_slots_sql(False, True), [f, start, one]),
            ("SearchAvailableSlots, whole tenant, 1 day", queries.search_slots_sql(False, False), [start, one]),
            ("GetCalendarView by facility, 1 day", queries.calendar_sql(True, False), [f, start, one]),
            ("GetCalendarView by provider, 7 days", queries.calendar_sql(False, True), [p, start, week]),
            ("GetCalendarView, whole tenant, 1 day", queries.calendar_sql(False, False), [start, one]),
        ]
        for title, (sql, filters), values in cases:
            buffers = [0, 0] if title.startswith("SearchAvailableSlots") else []  # the service-wide buffer minutes
            args = [TENANT, *values, start, "", 51, *buffers]  # first page of 50: after (from, ""), limit + 1
            types = ", ".join(
                ["text"] * (1 + len(filters)) + ["timestamptz"] * 3 + ["text", "int"] + ["int"] * len(buffers)
            )
            literals = ", ".join(_literal(a) for a in args)
            await conn.execute(f"PREPARE q ({types}) AS {sql}")
            for _ in range(6):
                await conn.execute(f"EXECUTE q ({literals})")
            plan = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE q ({literals})")
            await conn.execute("DEALLOCATE q")
            lines = "\n".join(r[0] for r in plan)
            text.append(f"-- {title}\n-- EXECUTE q ({literals})\n{sql.strip()}\n\n{lines}\n")
    finally:
        await conn.close()
    return "\n".join(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--providers", type=int, default=100)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--booked-share", type=float, default=0.3)
    parser.add_argument("--requests", type=int, default=1000, help="requests per query kind and concurrency level")
    parser.add_argument("--concurrency", default="1,10,50")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the data folder")
    parser.add_argument("--explain", type=Path, default=None, help="write EXPLAIN (ANALYZE, BUFFERS) output here")
    args = parser.parse_args()
    levels = [int(x) for x in args.concurrency.split(",")]

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="query-bench-"))
    stack = Stack(data_dir=data_dir.resolve())
    spawn = multiprocessing.get_context("spawn")
    server: Any = None
    stop = spawn.Event()
    try:
        dsn = stack.start_postgres()
        asyncio.run(db.migrate(dsn))
        started = time.perf_counter()
        counts = asyncio.run(load(dsn, args.providers, args.days, args.booked_share, args.seed))
        print(f"loaded {counts} in {time.perf_counter() - started:.1f} s", flush=True)
        report = asyncio.run(explain(dsn, args.providers))
        print(report, flush=True)
        if args.explain is not None:
            args.explain.write_text(report)

        port = free_port()
        ready = spawn.Event()
        process = spawn.Process(target=serve, args=(dsn, port, ready, stop))
        process.start()
        server = process
        if not ready.wait(60):
            raise RuntimeError("the HTTP view did not start")
        base = f"http://127.0.0.1:{port}"
        token = jwt.encode({"tenant": TENANT, "sub": "bench", "scope": "scheduling:read"}, SECRET, algorithm="HS256")
        rng = random.Random(args.seed)
        header = f"{'query':<28} {'clients':>7} {'requests':>8} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}"
        header += f" {'rows/req':>8}"
        rows = [header, "-" * len(header)]
        for name, paths in workloads(args.providers, args.days, rng, args.requests).items():
            asyncio.run(run_level(base, paths[:50], 1, token))  # warm-up: connections, prepared statements, caches
            for level in levels:
                latencies, wall, items = asyncio.run(run_level(base, paths, level, token))
                rows.append(
                    f"{name:<28} {level:>7} {len(latencies):>8} {percentile(latencies, 50):>8.2f} "
                    f"{percentile(latencies, 99):>8.2f} {len(latencies) / wall:>8.0f} {items / len(latencies):>8.1f}"
                )
                print(rows[-1], flush=True)
        print("\n" + "\n".join(rows))
        print(f"\n{os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min)")
        return 0
    finally:
        stop.set()
        if server is not None:
            server.join(30)
            if server.is_alive():
                server.kill()
        stack.stop()
        if not args.keep and args.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
