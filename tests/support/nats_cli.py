"""A stand-in for the `nats` CLI's `request` (`req`) command, for machines without the CLI.

The README's quick start uses `nats req --raw -s URL -H K:V SUBJECT BODY`; the test runs the README's
shell blocks verbatim with this on PATH as `nats` when the real CLI is missing, so the subjects,
headers and bodies are exactly the README's and go through nats-py.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import nats


async def request(server: str, subject: str, body: str, headers: dict[str, str], within: float) -> bytes:
    nc = await nats.connect(server)
    try:
        reply = await nc.request(subject, body.encode(), timeout=within, headers=headers or None)
        return bytes(reply.data)
    finally:
        await nc.close()


def main() -> int:
    parser = argparse.ArgumentParser(prog="nats")
    sub = parser.add_subparsers(dest="command", required=True)
    req = sub.add_parser("req", aliases=["request"])
    req.add_argument("-s", "--server", default="nats://127.0.0.1:4222")
    req.add_argument("subject")
    req.add_argument("body", nargs="?", default="")
    req.add_argument("-H", "--header", action="append", default=[])
    req.add_argument("--raw", action="store_true")
    req.add_argument("--timeout", type=float, default=15.0)
    args = parser.parse_args()
    headers = dict(h.split(":", 1) for h in args.header)
    sys.stdout.buffer.write(asyncio.run(request(args.server, args.subject, args.body, headers, args.timeout)) + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
