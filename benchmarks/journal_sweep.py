"""What one journal-expiry sweep costs as the journal grows: a page against the whole partition.

Fills one partition's journal database (the worker's RocksDB store, `tables.local.PartitionedStore`, in a
temporary folder; no broker) with entries the size of a booking's (~3 KB) up to each checkpoint, then times
one page as the actor's sweep reads it (`tables.pages.page`, `agents.commands.JOURNAL_PAGE` entries, decoded)
beside reading every entry of that one partition decoded (what the hourly sweep did, for each of the
worker's partitions in turn, on every partition's database).

    python benchmarks/journal_sweep.py [--checkpoints 10000 100000 360000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import faust

from agents.commands import JOURNAL_PAGE
from agents.journal import expired_keys
from scheduling.core.config import Settings
from scheduling.streams.app import faust_settings
from tables.durable import Changelog, table
from tables.pages import page

PARTITION = 1


def main(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="journal-sweep-"))
    settings = Settings(kafka_url="localhost:1", state_dir=str(folder), app_id="journal-sweep")
    app = faust.App(settings.app_id, **faust_settings(settings))
    journal = table(app, Changelog(), "journal", partitions=4, key_type=str)
    store: Any = journal.data
    db = store._db_for_partition(PARTITION)
    now = datetime.now(UTC)
    written = 0
    print(f"{'entries':>8} {'a page of ' + format(JOURNAL_PAGE, ','):>16} {'the whole partition':>20}")
    for checkpoint in args.checkpoints:
        for n in range(written, checkpoint):
            decided = (now - timedelta(minutes=n % 1000)).isoformat()
            value = {"routingKey": "tok000000001", "decidedAt": decided, "record": "x" * 2800}
            db.put(store._encode_key(f"t\x1fcaller\x1ftok000000001\x1f{n:09}"), store._encode_value(value))
        written = checkpoint
        started = time.perf_counter()
        entries, _ = page(journal, PARTITION, None, JOURNAL_PAGE)
        expired_keys(entries, PARTITION, settings.partitions, now)
        one_page = time.perf_counter() - started
        started = time.perf_counter()
        every = [(store._decode_key(k), store._decode_value(v)) for k, v in store._visible_items(db)]
        expired_keys(every, PARTITION, settings.partitions, now)
        whole = time.perf_counter() - started
        print(f"{checkpoint:>8,} {one_page * 1000:>13.0f} ms {whole:>18.1f} s", flush=True)
    db.close()
    load = os.getloadavg()
    print(f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1, 5, 15 min)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoints", type=int, nargs="+", default=[10_000, 100_000, 360_000])
    main(parser.parse_args())
