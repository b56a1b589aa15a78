"""Process entry points: the CLI, the roles, the worker, the embedded stack; adapters are wired here."""
