"""Delivery correlation: every delivery report joined to the request that caused it.

``route`` and ``join`` are the pure stages (no Kafka, no faust), tested with plain objects;
``faustapp`` is the thin faust-streaming adapter around them (docs/correlator.md).
"""
