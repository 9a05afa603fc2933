"""Event store to Kafka publisher and the topic contract."""
