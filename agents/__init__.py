"""Faust agents: small, one concern each. Importing this package registers them on the app."""

from agents import commands, reminders, timers  # noqa: F401
