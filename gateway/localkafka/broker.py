"""A throwaway single-node Kafka broker for tests, demos and benchmarks.

The broker is Apache Kafka in KRaft mode, one JVM holding both the broker and the controller
role, listening on 127.0.0.1 only; its jars come from :mod:`gateway.localkafka.fetching`.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from gateway.localkafka.admin import (
    PROBE_INTERVAL_SECONDS,
    available_brokers,
    create_topics,
    run_coroutine,
)
from gateway.localkafka.fetching import PINNED_VERSION, fetch
from gateway.localkafka.node import KafkaNode, find_java, new_kafka_uuid
from gateway.localkafka.ports import HOST, free_ports, port_accepts
from gateway.localkafka.process import LocalKafkaError

NODE_ID = 1
_PROBE_TIMEOUT_SECONDS = 5.0


def common_properties(num_partitions: int) -> dict[str, str]:
    """Settings every local broker gets, alone or in a cluster."""
    return {
        "num.partitions": str(num_partitions),
        "auto.create.topics.enable": "true",
        # Tests should not wait three seconds for every consumer group to form.
        "group.initial.rebalance.delay.ms": "0",
    }


class LocalKafka:
    """One local Kafka broker (KRaft, broker and controller in one JVM) on free 127.0.0.1 ports.

    ``start()`` fetches the jars if needed, launches the broker and returns once it answers
    metadata requests. ``stop()`` ends the process but keeps the ports and the data, so a later
    ``start()`` brings the same broker back with its topics and messages ("Kafka down, then
    back"). ``close()`` (also ``__exit__`` and interpreter exit) stops it and deletes the data
    directory, unless it was given by the caller or ``keep_data`` is set.

    The ports are chosen when the object is created, so ``bootstrap_servers`` is known before
    the broker runs.
    """

    bootstrap_servers: str

    def __init__(
        self,
        *,
        num_partitions: int = 3,
        port: int = 0,
        data_dir: str | os.PathLike[str] | None = None,
        keep_data: bool = False,
        version: str = PINNED_VERSION,
        heap: str = "512m",
        extra_config: Mapping[str, str] | None = None,
    ) -> None:
        """Prepare a broker; nothing runs until ``start()``.

        ``num_partitions`` is the default for auto-created topics; ``port`` 0 picks a free port;
        ``data_dir`` None uses a new temporary directory; ``extra_config`` entries override
        the generated server.properties.
        """
        broker_port, controller_port = free_ports(2)
        self.port = port or broker_port
        self.controller_port = controller_port
        self.bootstrap_servers = f"{HOST}:{self.port}"
        self.num_partitions = num_partitions
        self.version = version
        self._heap = heap
        self._extra_config = dict(extra_config or {})
        self._data_dir = Path(data_dir).resolve() if data_dir is not None else None
        self._owns_data_dir = data_dir is None
        self._keep_data = keep_data
        self._node: KafkaNode | None = None
        self._atexit_registered = False

    @property
    def data_dir(self) -> Path | None:
        """The broker's data directory (config, log segments, logs), None before ``start()``."""
        return self._data_dir

    @property
    def pid(self) -> int | None:
        """Process id of the running broker JVM, None when it is not running."""
        return self._node.pid if self._node is not None else None

    def is_running(self) -> bool:
        """Whether the broker process is alive (not whether it is ready)."""
        return self._node is not None and self._node.is_running()

    def start(self, timeout_seconds: float = 120.0) -> None:
        """Start the broker and return once it answers metadata requests; no-op if running.

        After ``stop()`` this restarts the same broker: same ports, same data directory.
        The timeout covers formatting, launching and readiness, not a first-time download.
        Raises LocalKafkaError (with the tail of the broker's log) if it exits or is not
        ready in time; the process is then stopped.
        """
        if self.is_running():
            return
        libs = fetch(self.version)
        java = find_java()
        deadline = time.monotonic() + timeout_seconds
        node = self._ensure_node()
        node.write_config(self._server_properties(node))
        if not self._atexit_registered:
            # Stop the JVM and remove the temporary data when the interpreter exits normally,
            # even if nobody called close().
            atexit.register(self.close)
            self._atexit_registered = True
        # Format only a fresh directory: a restart must keep the cluster id and the data.
        if not node.formatted():
            node.format(java, libs, ["--cluster-id", new_kafka_uuid(), "--standalone"], deadline)
        node.launch(java, libs)
        try:
            self._wait_until_ready(node, deadline, timeout_seconds)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout_seconds: float = 30.0) -> None:
        """Stop the broker and wait until its process is gone; keep its ports and data.

        Sends SIGTERM (a clean shutdown that flushes the logs), and SIGKILL if the process is
        still there after ``timeout_seconds``. No-op if the broker is not running.
        """
        if self._node is not None:
            self._node.stop(timeout_seconds)

    def close(self, timeout_seconds: float = 30.0) -> None:
        """Stop the broker and delete its data directory unless it is the caller's or kept."""
        self.stop(timeout_seconds)
        if self._atexit_registered:
            atexit.unregister(self.close)
            self._atexit_registered = False
        if self._data_dir is not None and self._owns_data_dir and not self._keep_data:
            shutil.rmtree(self._data_dir, ignore_errors=True)
            self._data_dir = None
            self._node = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def create_topics(
        self, names: Sequence[str], partitions: int = 3, timeout_seconds: float = 30.0
    ) -> None:
        """Create the topics (replication factor 1; existing ones are left as they are) and
        return once every partition of each has a leader. Raises LocalKafkaError on failure.

        Works from synchronous and asynchronous code alike (it uses a private event loop).
        """
        run_coroutine(
            lambda: create_topics(self.bootstrap_servers, list(names), partitions, timeout_seconds)
        )

    def log_tail(self) -> str:
        """The last lines of the broker's log and of the JVM's console output, for diagnostics."""
        return self._node.log_tail() if self._node is not None else ""

    def _ensure_node(self) -> KafkaNode:
        if self._data_dir is None:
            self._data_dir = Path(tempfile.mkdtemp(prefix="localkafka-"))
        if self._node is None:
            self._node = KafkaNode(
                NODE_ID, self.port, self.controller_port, self._data_dir, self._heap
            )
        return self._node

    def _server_properties(self, node: KafkaNode) -> dict[str, str]:
        settings = {
            **node.listener_properties(),
            "controller.quorum.bootstrap.servers": node.controller_endpoint,
            **common_properties(self.num_partitions),
            # A single broker cannot hold more than one replica of the internal topics, and
            # fewer of their partitions make the first consumer group join faster.
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
        }
        settings.update(self._extra_config)
        return settings

    def _wait_until_ready(self, node: KafkaNode, deadline: float, timeout_seconds: float) -> None:
        while True:
            code = node.exit_code()
            if code is not None:
                raise LocalKafkaError(
                    f"the Kafka broker exited with code {code} before it was ready\n"
                    f"{self.log_tail()}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LocalKafkaError(
                    f"the Kafka broker on {self.bootstrap_servers} was not ready within "
                    f"{timeout_seconds:g} s\n{self.log_tail()}"
                )
            probe_timeout = min(remaining, _PROBE_TIMEOUT_SECONDS)
            # The TCP check first keeps aiokafka from logging connection errors while the
            # JVM is still booting.
            if port_accepts(self.port) and NODE_ID in run_coroutine(
                functools.partial(available_brokers, self.bootstrap_servers, probe_timeout)
            ):
                return
            time.sleep(PROBE_INTERVAL_SECONDS)
