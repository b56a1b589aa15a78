"""The kernel every role shares: settings and names, typed wire records, auth, metrics, failure kinds."""
