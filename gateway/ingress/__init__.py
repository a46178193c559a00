"""The webhook ingress: the provider's callbacks (status, incoming SMS, call confirmation)
become events on Kafka, answered 200 only once Kafka holds them.

Pure modules (no I/O): ``params`` (reading the wire), ``callback`` (typed callbacks),
``signature``, ``mapping`` (callbacks to events), ``access``, ``health``. Adapters:
``handler`` (publishing and the answer codes), ``server`` (aiohttp), ``role`` (the
``smsc-gateway ingress`` composition). Nothing is imported here, so ``gateway.config`` can
load :class:`~gateway.ingress.settings.IngressSettings` without the adapters.
"""
