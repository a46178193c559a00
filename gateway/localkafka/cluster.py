"""A throwaway three-broker Kafka cluster on one machine, for fault tests and benchmarks.

Three KRaft nodes, each one JVM in *combined* mode (broker and controller), together one
three-voter controller quorum. Combined rather than dedicated controllers because this runs
on a two-core machine beside the tests: dedicated controllers would mean four to six JVMs
for the same three brokers, and with three voters the quorum survives any one node going
away, which is the fault the tests inject. The price is that killing a node also kills a
controller voter (sometimes the active controller, which the quorum then re-elects in about a
second): a harder fault than a broker alone, not an easier one.

Topics get replication factor 3 and ``min.insync.replicas`` 2 (broker defaults, so topics
created on first use and the correlator's own topics get them too): with one broker down,
acks=all writes go on; with two down, they are refused.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import functools
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from gateway.localkafka.admin import (
    PROBE_INTERVAL_SECONDS,
    PartitionState,
    available_brokers,
    create_topics,
    partition_states,
    run_coroutine,
)
from gateway.localkafka.broker import common_properties
from gateway.localkafka.fetching import PINNED_VERSION, fetch
from gateway.localkafka.node import KafkaNode, find_java, new_kafka_uuid
from gateway.localkafka.ports import free_ports, port_accepts
from gateway.localkafka.process import LocalKafkaError

BROKERS = 3
#: Heap of each JVM: three of them and the test suite share a 2-core, 24 GB machine with
#: other work. A node with a few hundred partitions stays well inside it (docs/operations.md).
DEFAULT_HEAP = "384m"
_PROBE_TIMEOUT_SECONDS = 5.0


class LocalKafkaCluster:
    """Three local Kafka nodes (ids 1, 2, 3) forming one KRaft cluster on 127.0.0.1.

    ``start()`` formats the nodes on first use, launches them and returns once every broker
    is registered and unfenced. One broker at a time can be taken down by id and brought
    back with its data: :meth:`stop_broker` (SIGTERM: a controlled shutdown that moves its
    leaderships first), :meth:`kill_broker` (SIGKILL: the cluster notices only when its
    heartbeats stop) and :meth:`start_broker`. ``close()`` (also ``__exit__`` and
    interpreter exit) stops every node and deletes the data directory unless it was given by
    the caller or ``keep_data`` is set.
    """

    bootstrap_servers: str

    def __init__(
        self,
        *,
        num_partitions: int = 3,
        data_dir: str | Path | None = None,
        keep_data: bool = False,
        version: str = PINNED_VERSION,
        heap: str = DEFAULT_HEAP,
        extra_config: Mapping[str, str] | None = None,
    ) -> None:
        """Prepare the cluster; nothing runs until ``start()``. ``extra_config`` entries
        override every node's generated server.properties."""
        self.num_partitions = num_partitions
        self.version = version
        self._extra_config = dict(extra_config or {})
        self._owns_data_dir = data_dir is None
        self._keep_data = keep_data
        root = Path(data_dir).resolve() if data_dir is not None else None
        self._root = root or Path(tempfile.mkdtemp(prefix="localkafka-cluster-"))
        ports = free_ports(2 * BROKERS)
        self._nodes = {
            i: KafkaNode(i, ports[2 * i - 2], ports[2 * i - 1], self._root / f"node-{i}", heap)
            for i in range(1, BROKERS + 1)
        }
        self.bootstrap_servers = ",".join(n.bootstrap for n in self._nodes.values())
        # Stop the JVMs and remove the temporary data when the interpreter exits normally,
        # even if nobody called close().
        atexit.register(self.close)
        self._atexit_registered = True

    @property
    def data_dir(self) -> Path:
        """The directory holding one ``node-<id>`` directory per broker."""
        return self._root

    @property
    def broker_ids(self) -> list[int]:
        return list(self._nodes)

    def pid(self, broker_id: int) -> int | None:
        """Process id of the broker's JVM, None when it is not running."""
        return self._node(broker_id).pid

    def is_running(self, broker_id: int) -> bool:
        return self._node(broker_id).is_running()

    def crashed(self) -> list[int]:
        """The brokers whose JVM ended without being stopped or killed through this object."""
        return [i for i, node in self._nodes.items() if node.exit_code() is not None]

    def start(self, timeout_seconds: float = 180.0) -> None:
        """Start every broker not running and return once all are available.

        Raises LocalKafkaError (with the tails of the brokers' logs) if one exits or the
        cluster is not ready in time; the cluster is then stopped.
        """
        libs, java = fetch(self.version), find_java()
        deadline = time.monotonic() + timeout_seconds
        self._format(java, libs, deadline)
        for node in self._nodes.values():
            if not node.is_running():
                node.launch(java, libs)
        try:
            self._wait_until_available(set(self._nodes), deadline, timeout_seconds)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout_seconds: float = 30.0) -> None:
        """Stop every broker (SIGTERM, SIGKILL after the timeout); keep ports and data.

        All at once: stopped one after another, the last ones would try their controlled
        shutdown against a controller quorum already gone, and wait out the timeout.
        """
        nodes = list(self._nodes.values())
        with concurrent.futures.ThreadPoolExecutor(len(nodes)) as pool:
            list(pool.map(lambda node: node.stop(timeout_seconds), nodes))

    def close(self, timeout_seconds: float = 30.0) -> None:
        """Stop every broker and delete the data unless it is the caller's or kept."""
        self.stop(timeout_seconds)
        if self._atexit_registered:
            atexit.unregister(self.close)
            self._atexit_registered = False
        if self._owns_data_dir and not self._keep_data:
            shutil.rmtree(self._root, ignore_errors=True)

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

    def stop_broker(self, broker_id: int, timeout_seconds: float = 30.0) -> None:
        """Stop one broker cleanly (SIGTERM) and wait until its process is gone."""
        self._node(broker_id).stop(timeout_seconds)

    def kill_broker(self, broker_id: int) -> None:
        """SIGKILL one broker, as a machine that dies; returns once the process is gone."""
        self._node(broker_id).kill()

    def start_broker(self, broker_id: int, timeout_seconds: float = 120.0) -> None:
        """Start one broker again (same ports, same data) and return once it is available:
        registered and unfenced, which is before it has caught up as a follower (see
        :meth:`wait_in_sync`). No-op if it runs."""
        deadline = time.monotonic() + timeout_seconds
        self.launch_broker(broker_id)
        self._wait_until_available({broker_id}, deadline, timeout_seconds)

    def launch_broker(self, broker_id: int) -> None:
        """Start one broker again without waiting for it (no-op if it runs); then
        :meth:`wait_available` can wait elsewhere, for example in a thread.

        Call it from the main thread: the JVM is tied to the thread that starts it, and
        dies with it (see :func:`~gateway.localkafka.process.death_signal_prefix`).
        """
        node = self._node(broker_id)
        if not node.is_running():
            node.launch(find_java(), fetch(self.version))

    def wait_available(self, broker_ids: Sequence[int], timeout_seconds: float = 120.0) -> None:
        """Return once the brokers are registered and unfenced; LocalKafkaError if one
        exits or the time is up."""
        deadline = time.monotonic() + timeout_seconds
        self._wait_until_available(set(broker_ids), deadline, timeout_seconds)

    def create_topics(
        self, names: Sequence[str], partitions: int = 3, timeout_seconds: float = 30.0
    ) -> None:
        """Create the topics with a replica on every broker (existing ones are left as they
        are) and return once every partition of each has a leader."""
        run_coroutine(
            lambda: create_topics(
                self.bootstrap_servers, list(names), partitions, timeout_seconds, BROKERS
            )
        )

    def partitions(
        self, topics: Sequence[str] | None = None, timeout_seconds: float = 30.0
    ) -> dict[tuple[str, int], PartitionState]:
        """Each partition of ``topics`` (None: every topic) by (topic, number): its leader's
        id (-1: none) and its in-sync replicas."""
        names = list(topics) if topics is not None else None
        return run_coroutine(
            lambda: partition_states(self.bootstrap_servers, names, timeout_seconds)
        )

    def leader_of(self, topic: str, partition: int = 0) -> int:
        """The id of the broker leading ``partition`` of ``topic`` now (-1: none)."""
        return self.partitions([topic])[topic, partition].leader

    def wait_in_sync(
        self, topics: Sequence[str] | None = None, timeout_seconds: float = 120.0
    ) -> None:
        """Return once every partition of ``topics`` (None: of every topic) has all brokers
        in its ISR: the cluster is whole again after a broker came back."""
        deadline = time.monotonic() + timeout_seconds
        while True:
            lagging = [
                f"{topic}:{number} isr={list(state.isr)}"
                for (topic, number), state in self.partitions(topics).items()
                if len(state.isr) < BROKERS
            ]
            if not lagging:
                return
            if time.monotonic() > deadline:
                raise LocalKafkaError(
                    f"not in sync within {timeout_seconds:g} s: {', '.join(lagging[:5])}"
                )
            time.sleep(PROBE_INTERVAL_SECONDS)

    def log_tail(self, broker_id: int | None = None) -> str:
        """The last lines of one broker's logs, or of every broker's."""
        ids = self.broker_ids if broker_id is None else [broker_id]
        return "\n".join(self._node(i).log_tail() for i in ids)

    def _node(self, broker_id: int) -> KafkaNode:
        try:
            return self._nodes[broker_id]
        except KeyError:
            raise LocalKafkaError(f"no broker {broker_id}: the ids are {self.broker_ids}") from None

    def _format(self, java: str, libs: Path, deadline: float) -> None:
        """Write every node's configuration; format the nodes not formatted yet as one
        cluster whose initial controller quorum is the three of them."""
        for node in self._nodes.values():
            node.write_config(self._server_properties(node))
        fresh = [node for node in self._nodes.values() if not node.formatted()]
        if not fresh:
            return
        if len(fresh) != len(self._nodes):
            raise LocalKafkaError(f"{self._root} holds a partly formatted cluster")
        cluster_id = new_kafka_uuid()
        voters = ",".join(f"{n.node_id}@{n.controller_endpoint}:{new_kafka_uuid()}" for n in fresh)
        for node in fresh:
            quorum = ["--cluster-id", cluster_id, "--initial-controllers", voters]
            node.format(java, libs, quorum, deadline)

    def _server_properties(self, node: KafkaNode) -> dict[str, str]:
        quorum = ",".join(n.controller_endpoint for n in self._nodes.values())
        settings = {
            **node.listener_properties(),
            "controller.quorum.bootstrap.servers": quorum,
            **common_properties(self.num_partitions),
            "default.replication.factor": str(BROKERS),
            "min.insync.replicas": "2",
            "offsets.topic.replication.factor": str(BROKERS),
            "offsets.topic.num.partitions": "3",
            "transaction.state.log.replication.factor": str(BROKERS),
            "transaction.state.log.min.isr": "2",
            "transaction.state.log.num.partitions": "1",
            "share.coordinator.state.topic.replication.factor": str(BROKERS),
            "share.coordinator.state.topic.min.isr": "2",
        }
        settings.update(self._extra_config)
        return settings

    def _wait_until_available(self, ids: set[int], deadline: float, timeout_seconds: float) -> None:
        while True:
            for node in self._nodes.values():
                code = node.exit_code()
                if code is not None:
                    raise LocalKafkaError(
                        f"Kafka broker {node.node_id} exited with code {code}\n{node.log_tail()}"
                    )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LocalKafkaError(
                    f"Kafka brokers {sorted(ids)} were not available within "
                    f"{timeout_seconds:g} s\n{self.log_tail()}"
                )
            probe = functools.partial(
                available_brokers, self.bootstrap_servers, min(remaining, _PROBE_TIMEOUT_SECONDS)
            )
            # The TCP check first keeps aiokafka from logging connection errors while the
            # JVMs are still booting.
            if all(port_accepts(self._nodes[i].port) for i in ids) and ids <= run_coroutine(probe):
                return
            time.sleep(PROBE_INTERVAL_SECONDS)
