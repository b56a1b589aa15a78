"""Service-wide booking rules from the environment (CONTRACT section 9: SCHEDULING_<FIELD>, else the contract)."""

from __future__ import annotations

import pytest

from domain.booking_policy import CONTRACT_DEFAULTS
from scheduling.core.config import POLICY_VARIABLES, Settings


def test_without_variables_the_contracts_defaults_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in POLICY_VARIABLES.values():
        monkeypatch.delenv(variable, raising=False)
    assert Settings().booking_policy == CONTRACT_DEFAULTS


def test_each_variable_replaces_its_default(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {"SCHEDULING_MIN_NOTICE_MINUTES": "15", "SCHEDULING_MAX_ADVANCE_DAYS": "30",
              "SCHEDULING_CANCELLATION_CUTOFF_MINUTES": "240", "SCHEDULING_CHECK_IN_WINDOW_BEFORE_MINUTES": "20",
              "SCHEDULING_CHECK_IN_WINDOW_AFTER_MINUTES": "10", "SCHEDULING_WAITLIST_OFFER_MINUTES": "45",
              "SCHEDULING_REMINDER_LEADS": "2880, 60", "SCHEDULING_BUFFER_BEFORE_MINUTES": "5",
              "SCHEDULING_BUFFER_AFTER_MINUTES": "10", "SCHEDULING_MAX_PER_DAY": "12"}  # fmt: skip
    for variable, value in values.items():
        monkeypatch.setenv(variable, value)
    assert Settings().booking_policy.dump() == {
        "minNoticeMinutes": 15, "maxAdvanceDays": 30, "cancellationCutoffMinutes": 240,
        "checkInWindow": {"beforeMinutes": 20, "afterMinutes": 10}, "reminderLeadMinutes": [2880, 60],
        "waitlistOfferMinutes": 45, "bufferBeforeMinutes": 5, "bufferAfterMinutes": 10, "maxPerDay": 12,
    }  # fmt: skip


@pytest.mark.parametrize(("variable", "value"), [("SCHEDULING_MIN_NOTICE_MINUTES", "soon"),
                                                 ("SCHEDULING_REMINDER_LEADS", "0"),
                                                 ("SCHEDULING_MAX_ADVANCE_DAYS", "-1")])  # fmt: skip
def test_a_bad_value_stops_the_start_with_its_name(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit, match=f"invalid booking policy default in the environment: {variable}"):
        Settings()
