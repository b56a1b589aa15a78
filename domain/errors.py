"""Error codes of the contract and the one exception type that carries them."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    SLOT_NOT_AVAILABLE = "SLOT_NOT_AVAILABLE"
    DOUBLE_BOOKING_DETECTED = "DOUBLE_BOOKING_DETECTED"
    DOUBLE_BOOKING_OVERRIDE_DENIED = "DOUBLE_BOOKING_OVERRIDE_DENIED"
    NEW_SLOT_NOT_AVAILABLE = "NEW_SLOT_NOT_AVAILABLE"
    OPTIMISTIC_LOCK_CONFLICT = "OPTIMISTIC_LOCK_CONFLICT"
    INVALID_STATUS_TRANSITION = "INVALID_STATUS_TRANSITION"
    APPOINTMENT_NOT_FOUND = "APPOINTMENT_NOT_FOUND"
    SCHEDULE_NOT_FOUND = "SCHEDULE_NOT_FOUND"
    SLOT_NOT_FOUND = "SLOT_NOT_FOUND"
    WAITLIST_ENTRY_NOT_FOUND = "WAITLIST_ENTRY_NOT_FOUND"
    PATIENT_ID_CLAIM_REQUIRED = "PATIENT_ID_CLAIM_REQUIRED"
    VALIDATION_FAILED = "VALIDATION_FAILED"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    OUTSIDE_BOOKING_WINDOW = "OUTSIDE_BOOKING_WINDOW"
    CANCELLATION_CUTOFF = "CANCELLATION_CUTOFF"
    OUTSIDE_CHECK_IN_WINDOW = "OUTSIDE_CHECK_IN_WINDOW"
    BOOKING_LIMIT_REACHED = "BOOKING_LIMIT_REACHED"
    PATIENT_DOUBLE_BOOKING = "PATIENT_DOUBLE_BOOKING"
    UNAVAILABLE = "UNAVAILABLE"
    INTERNAL = "INTERNAL"


HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.SLOT_NOT_AVAILABLE: 409,
    ErrorCode.DOUBLE_BOOKING_DETECTED: 409,
    ErrorCode.DOUBLE_BOOKING_OVERRIDE_DENIED: 403,
    ErrorCode.NEW_SLOT_NOT_AVAILABLE: 409,
    ErrorCode.OPTIMISTIC_LOCK_CONFLICT: 409,
    ErrorCode.INVALID_STATUS_TRANSITION: 409,
    ErrorCode.APPOINTMENT_NOT_FOUND: 404,
    ErrorCode.SCHEDULE_NOT_FOUND: 404,
    ErrorCode.SLOT_NOT_FOUND: 404,
    ErrorCode.WAITLIST_ENTRY_NOT_FOUND: 404,
    ErrorCode.PATIENT_ID_CLAIM_REQUIRED: 400,
    ErrorCode.VALIDATION_FAILED: 400,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.OUTSIDE_BOOKING_WINDOW: 409,
    ErrorCode.CANCELLATION_CUTOFF: 409,
    ErrorCode.OUTSIDE_CHECK_IN_WINDOW: 409,
    ErrorCode.BOOKING_LIMIT_REACHED: 409,
    ErrorCode.PATIENT_DOUBLE_BOOKING: 409,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.INTERNAL: 500,
}


class DomainError(Exception):
    """A refusal: raised inside a decision, turned into a normal error reply at its edge."""

    def __init__(self, code: ErrorCode, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    @property
    def status(self) -> int:
        return HTTP_STATUS[self.code]

    def as_reply(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "code": self.code.value,
            "status": self.status,
            "message": self.message,
        }
        if self.details is not None:
            error["details"] = self.details
        return {"ok": False, "error": error}


def validation_error(details: list[dict[str, Any]], message: str = "invalid input") -> DomainError:
    return DomainError(ErrorCode.VALIDATION_FAILED, message, details)


def pydantic_details(exc: Any) -> list[dict[str, Any]]:
    """Field-level details of a pydantic ValidationError, without echoing input values."""
    return [
        {
            "field": ".".join(str(p) for p in err.get("loc", ())),
            "message": err.get("msg", ""),
        }
        for err in exc.errors(include_url=False, include_input=False)
    ]
