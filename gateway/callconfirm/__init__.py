"""Phone confirmation by call: requests on ``smsc.call-confirm.v1``, numbers from wait_call.php
and outcomes on ``smsc.waitcall.v1`` (docs/account.md).

- :mod:`.book`: the pending confirmations rebuilt from the waitcall topic (no I/O);
- :mod:`.issuer`, :mod:`.lane`, :mod:`.decider`: numbers for requests, the consumer of the
  requests, the outcomes (Kafka and HTTP reached through Protocols);
- :mod:`.runner`: wired to Kafka and the HTTP API client, run by the poller;
- :mod:`.metrics`; its settings are :mod:`gateway.settings.callconfirm`.
"""
