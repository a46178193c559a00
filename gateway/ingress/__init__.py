"""The webhook ingress: the provider's callbacks (status, incoming SMS, call confirmation)
become events on Kafka, answered 200 only once Kafka holds them.

Pure modules (no I/O): ``params`` (reading the wire), ``callback`` (typed callbacks),
``signature``, ``mapping`` (callbacks to events), ``access``, ``health``. Adapters:
``handler`` (publishing and the answer codes), ``server`` (the HTTP/1.1 front), ``service``
(server and readiness prober together). The role is wired in :mod:`gateway.roles.ingress`;
its settings are :class:`~gateway.settings.ingress.IngressSettings`.
"""
