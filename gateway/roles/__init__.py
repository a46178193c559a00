"""Every role of the gateway, wired: one module per ``smsc-gateway <role>``.

Each is built the same way: ``run_<role>(settings, metrics, stop)`` checks the role's settings
sections (:data:`gateway.settings.ROLE_SECTIONS`), builds its parts from the settings and the
metrics, runs them until ``stop`` is set with every task owned (one :class:`asyncio.TaskGroup`
in the sender, the receiver, the poller and ``all``; the ingress's service and the
correlator's faust app own theirs), and stops them in one order, each closing step bounded
by the role's :class:`~gateway.shutdown.Shutdown`. :mod:`.all` runs several of them in one
process from the same functions; :mod:`.binds` and :mod:`.probes` are what they share.
"""
