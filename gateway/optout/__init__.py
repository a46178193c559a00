"""Opt-out by keyword: an incoming SMS whose whole text is one of the configured keywords
(STOP, СТОП...) puts its phone on the provider's blacklist and is told on Kafka.

Runs in the ``poller`` role (it owns the HTTP API client): a consumer group on
``smsc.incoming.v1``. See docs/account.md for the guarantees.
"""
