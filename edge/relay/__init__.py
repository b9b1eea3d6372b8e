"""The uplink: a durable outbox and the MQTT client that drains it."""
