"""The provider's HTTP API (send.php, status.php, balance.php) and the ``poller`` role.

- :mod:`.settings`: the ``http_api`` and ``poller`` settings sections;
- :mod:`.errors`: ``error_code`` answers and transport failures as typed errors;
- :mod:`.replies`: parsing the ``fmt=3`` answers (no I/O);
- :mod:`.limits`, :mod:`.circuit`: concurrency, per-script rate limits, the per-credential
  circuit;
- :mod:`.client`: the httpx adapter;
- :mod:`.compose`, :mod:`.transport`: a send request sent over HTTP, the ambiguous retry;
- :mod:`.pending`, :mod:`.reports`, :mod:`.poller`: reconciliation by status queries.

See ``docs/http-api.md``.
"""
