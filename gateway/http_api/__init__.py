"""The provider's HTTP API (send, status, balance, get_answers, wait_call) and the poller's parts.

- :mod:`gateway.settings.http_api`: the ``http_api`` and ``poller`` settings sections;
- :mod:`.errors`: ``error_code`` answers and transport failures as typed errors;
- :mod:`.replies`, :mod:`.answers`: parsing the ``fmt=3`` answers (no I/O);
- :mod:`.limits`, :mod:`.circuit`: concurrency, per-script rate limits, the per-credential
  circuit;
- :mod:`.client`: the httpx adapter;
- :mod:`.send_params`, :mod:`.sending`: a send request sent over HTTP, the ambiguous retry;
- :mod:`.pending`, :mod:`.reports`, :mod:`.poller`: reconciliation by status queries.

See ``docs/http-api.md``.
"""
