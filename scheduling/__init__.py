"""Wiring of the scheduling service: configuration, the Faust app, bridges, projector, HTTP view."""
