"""Ports the actors use besides their tables (the seed's PatientCachePort and ReminderDispatchPort).

Adapters implement them (`scheduling/readmodel/patients.py`, `bridge/notifications.py`) and are
handed to the actors by the worker's bootstrap; unit tests hand in fakes.
"""

from __future__ import annotations

from typing import Any, Protocol

from domain.model import Appointment


class PatientCachePort(Protocol):
    async def get(self, tenant: str, patient_id: str) -> dict[str, Any] | None:
        """The patient's demographics from registration events, or None when none arrived."""
        ...


class ReminderDispatchPort(Protocol):
    async def request(self, appointment: Appointment, lead_minutes: int, patient: dict[str, Any] | None) -> bool:
        """Hand a reminder to the notification service; True only once it acknowledged it."""
        ...
