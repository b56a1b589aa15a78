"""The partition report's pieces: decoding assignments, completing them from the workers' views, rendering."""

from __future__ import annotations

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
    assert "          0          7         12       5  m1" in text
    assert "worker host-1 (member m1): partitions 0, tables recovering, 42 records left" in text
    assert "16d7e397c172  9  p0" in text
