"""The provider's account scripts: dedicated numbers (receive_phones.php), deferred tasks
(downloads.php), contacts, groups and the blacklist (phones.php), and the operator commands
that use them (:mod:`.cli`).

The answers are read without I/O; the calls go through :class:`~.calls.ScriptCaller`, which
keeps each script's identical-requests-a-minute rule on top of the HTTP API client's
concurrency per login.
"""
