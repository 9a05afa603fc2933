"""Kafka consumer-group runtime shared by every projection."""
