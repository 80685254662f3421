"""Shared test plugins: the real Mosquitto broker fixtures live in tests/mqtt_broker.py."""

pytest_plugins = ["mqtt_broker"]
