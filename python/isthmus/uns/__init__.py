"""Unified Namespace publishing: ISA-95 topics, asset data products, durable MQTT outbox.

Modules (import the one you need):

- :mod:`isthmus.uns.settings`: ``MqttSettings``, ``OutboxSettings`` (config Structs).
- :mod:`isthmus.uns.topics`: ISA-95 topic tree and its documented leaves.
- :mod:`isthmus.uns.models`: ``Pump``, ``Motor``, ``RotatingAsset``, the message envelope,
  JSON Schemas.
- :mod:`isthmus.uns.units`: declared unit conversion, tag-to-field mapping, report by
  exception.
- :mod:`isthmus.uns.outbox`: SQLite WAL store-and-forward.
- :mod:`isthmus.uns.mqtt_client`: a publish-only MQTT 5 / 3.1.1 client that writes batches.
- :mod:`isthmus.uns.publisher`: the publisher (outbox to broker) and the gateway status
  counters.
"""
