"""The partition report's pieces: decoding assignments, completing them from the workers' views, rendering."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from scheduling.run.status import render
from scheduling.streams.groups import RESOURCE_KEY, members_of, sole_owner, with_worker_views


def _member(member_id: str, partitions: list[int]) -> dict[str, object]:
    return {"memberId": member_id, "clientId": "", "host": "", "partitions": partitions}


def test_a_told_assignment_is_decoded_for_the_groups_topic_only() -> None:
    assignment = ConsumerProtocolMemberAssignment(
        0, [("scheduling-commands", [3, 1]), ("scheduling-decisions", [0])], b""
    ).encode()
    described = {"members": [
        {"member_id": "m2", "client_id": "c2", "client_host": "/h2", "member_assignment": b""},
        {"member_id": "m1", "client_id": "c1", "client_host": "/h1", "member_assignment": assignment},
    ]}  # fmt: skip
    members = members_of(described, "scheduling-commands")
    assert [(m.member_id, m.partitions) for m in members] == [("m1", (1, 3)), ("m2", ())]


def test_untold_assignments_come_from_the_matching_live_worker_only() -> None:
    members = [_member("m1", []), _member("m2", [])]
    views = [{"worker": "w1", "memberId": "m1", "partitions": [2, 0]},
             {"worker": "gone", "memberId": "m9", "partitions": [1, 3]}]  # fmt: skip
    completed = with_worker_views(members, views)
    assert [(m["memberId"], m["partitions"]) for m in completed] == [("m1", [0, 2]), ("m2", [])]
    assert completed[0]["worker"] == "w1"


def test_a_sole_member_owns_every_partition_and_two_untold_members_own_none() -> None:
    assert sole_owner([_member("m1", [])], [0, 1, 2])[0]["partitions"] == [0, 1, 2]
    assert [m["partitions"] for m in sole_owner([_member("m1", []), _member("m2", [])], [0, 1])] == [[], []]


def test_only_routing_tokens_count_as_resources() -> None:
    assert RESOURCE_KEY.fullmatch("16d7e397c172")
    assert not RESOURCE_KEY.fullmatch("reminder.dispatch") and not RESOURCE_KEY.fullmatch("16d7e397c1721")


def test_render_names_members_owners_lag_workers_and_busiest() -> None:
    state = {
        "groups": [{"group": "scheduling", "topic": "scheduling-commands", "state": "Stable", "lag": 5,
                    "members": [_member("m1", [0]), _member("m2", [1])],
                    "partitions": [{"partition": 0, "owner": "m1", "committed": 7, "end": 12, "lag": 5},
                                   {"partition": 1, "owner": "m2", "committed": 3, "end": 3, "lag": 0}]}],
        "workers": [{"worker": "host-1", "memberId": "m1", "partitions": [0], "tablesRecovered": False,
                     "recoveryRemaining": 42}],
        "busiest": [{"resource": "16d7e397c172", "partition": 0, "commands": 9}],
        "busiestWindowSeconds": 300,
    }  # fmt: skip
    text = render(state)
    assert "group scheduling (scheduling-commands): Stable, 2 member(s), lag 5" in text
    assert "\n  member m1 partitions 0\n  member m2 partitions 1\n" in text
    assert "          0          7         12       5  m1" in text
    assert "worker host-1 (member m1): partitions 0, tables recovering, 42 records left" in text
    assert "16d7e397c172  9  p0" in text


def test_a_member_line_names_the_member_id_the_owner_column_shows_then_client_id_and_host() -> None:
    """On Apache Kafka every Faust worker has the same client id: only the member id tells them apart."""
    members = [
        {"memberId": "faust-0.15.3-6c57", "clientId": "faust-0.15.3", "host": "/10.0.0.7", "partitions": [0]},
        {"memberId": "faust-0.15.3-87ca", "clientId": "faust-0.15.3", "host": "", "partitions": []},
    ]
    state = {"groups": [{"group": "scheduling", "topic": "scheduling-commands", "state": "Stable", "lag": 0,
                         "members": members,
                         "partitions": [{"partition": 0, "owner": "faust-0.15.3-6c57", "committed": 1, "end": 1,
                                         "lag": 0}]}],
             "workers": [], "busiest": [], "busiestWindowSeconds": 300}  # fmt: skip
    lines = render(state).splitlines()
    assert lines[1:3] == [
        "  member faust-0.15.3-6c57 (client faust-0.15.3, host /10.0.0.7) partitions 0",
        "  member faust-0.15.3-87ca (client faust-0.15.3) partitions -",
    ]
    assert lines[4].endswith("  faust-0.15.3-6c57")


README = Path(__file__).resolve().parents[2] / "README.md"
#: one pattern per kind of line `render` prints
GROUP = re.compile(r"group (\S+) \((\S+)\): (\w+), (\d+) member\(s\), lag (\d+)")
MEMBER = re.compile(r"  member (\S+)(?: \((?:client (\S+?))?(?:, )?(?:host (\S+))?\))? partitions ([\d,]+|-)")
HEADER = re.compile(r"  partition  committed        end     lag  owner")
ROW = re.compile(r" +(\d+) +(\d+) +(\d+) +(\d+)  (\S+)")
WORKER = re.compile(
    r"worker (\S+) \(member (\S+)\): partitions ([\d,]+|-), tables (?:recovered|recovering, (\d+) records left)"
)
BUSIEST = re.compile(r"busiest resources, last (\d+) min \(commands, partition\):")
RESOURCE = re.compile(r"  ([0-9a-f]+)  (\d+)  p(\d+)")


def _partitions(text: str) -> list[int]:
    return [] if text == "-" else [int(p) for p in text.split(",")]


def _readme_sample() -> str:
    """The `scheduling status` sample under the README's Operations."""
    blocks = re.findall(r"```\n(group .*?)\n```", README.read_text(), re.S)
    assert len(blocks) == 1, "the README's `scheduling status` sample is gone"
    return str(blocks[0])


def _parsed(sample: str) -> dict[str, Any]:
    """The report the sample shows; every line must be one `render` prints."""
    state: dict[str, Any] = {"groups": [], "workers": [], "busiest": []}
    for line in sample.splitlines():
        if m := GROUP.fullmatch(line):
            state["groups"].append({"group": m[1], "topic": m[2], "state": m[3], "lag": int(m[5]), "members": [],
                                    "partitions": [], "count": int(m[4])})  # fmt: skip
        elif m := MEMBER.fullmatch(line):
            state["groups"][-1]["members"].append(
                {"memberId": m[1], "clientId": m[2] or "", "host": m[3] or "", "partitions": _partitions(m[4])}
            )
        elif HEADER.fullmatch(line):
            continue
        elif m := ROW.fullmatch(line):
            state["groups"][-1]["partitions"].append({"partition": int(m[1]), "committed": int(m[2]),
                                                      "end": int(m[3]), "lag": int(m[4]), "owner": m[5]})  # fmt: skip
        elif m := WORKER.fullmatch(line):
            state["workers"].append({"worker": m[1], "memberId": m[2], "partitions": _partitions(m[3]),
                                     "tablesRecovered": m[4] is None, "recoveryRemaining": int(m[4] or 0)})  # fmt: skip
        elif m := BUSIEST.fullmatch(line):
            state["busiestWindowSeconds"] = int(m[1]) * 60
        elif m := RESOURCE.fullmatch(line):
            state["busiest"].append({"resource": m[1], "commands": int(m[2]), "partition": int(m[3])})
        else:
            raise AssertionError(f"the README's status sample has a line render does not print: {line!r}")
    return state


def test_the_readmes_status_sample_is_what_render_prints() -> None:
    sample = _readme_sample()
    state = _parsed(sample)
    assert [g["count"] for g in state["groups"]] == [len(g["members"]) for g in state["groups"]]
    owners = {row["owner"] for group in state["groups"] for row in group["partitions"]}
    assert owners <= {m["memberId"] for group in state["groups"] for m in group["members"]}
    assert render(state) == sample
