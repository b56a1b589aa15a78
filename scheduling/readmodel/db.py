"""PostgreSQL: the connection pool and versioned migrations (plain SQL files applied in order, recorded)."""

from __future__ import annotations

import json
from importlib import resources

import asyncpg

MIGRATION_LOCK = 7_341_001


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    created = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, init=_init_connection)
    assert created is not None
    return created


async def migrate(dsn: str) -> list[str]:
    """Apply the migrations not yet recorded, under an advisory lock so concurrent starters are safe."""
    conn = await asyncpg.connect(dsn)
    applied: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz DEFAULT now())"
        )
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        files = sorted(
            (f for f in resources.files("scheduling.readmodel.migrations").iterdir() if f.name.endswith(".sql")),
            key=lambda f: f.name,
        )
        for file in files:
            if file.name in done:
                continue
            async with conn.transaction():
                await conn.execute(file.read_text())
                await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", file.name)
            applied.append(file.name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
        await conn.close()
    return applied
