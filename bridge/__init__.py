"""Bridges between NATS and the Kafka streams: commands in, decision records out."""
