"""Outbound clients: Kafka producers, consumers and admin (configured from settings) and
the notifier that sends messages to people (caller verification codes).

Below the relay and the consumers, above the write side: it talks to the outside world
and knows nothing of projections or the HTTP API.
"""
