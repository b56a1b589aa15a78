"""The scheduling domain: entities, rules and decisions, free of I/O.

Everything here is deterministic given its inputs, so the actor can re-run or
re-apply a decision after a crash and unit tests need no services.
"""
