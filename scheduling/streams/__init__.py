"""Stream plumbing: the Faust app factory, the embedded broker's guards, plain Kafka clients, lag."""
