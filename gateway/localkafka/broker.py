"""A throwaway single-node Kafka broker for tests, demos and benchmarks.

The broker is Apache Kafka in KRaft mode, one JVM holding both the broker and the controller
role, listening on 127.0.0.1 only; its jars come from :mod:`gateway.localkafka.fetching`.
"""

from __future__ import annotations

import atexit
import base64
import functools
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from gateway.localkafka.admin import (
    NODE_ID,
    PROBE_INTERVAL_SECONDS,
    broker_answers,
    create_topics,
    run_coroutine,
)
from gateway.localkafka.fetching import PINNED_VERSION, fetch
from gateway.localkafka.ports import HOST, free_ports, port_accepts
from gateway.localkafka.process import (
    LocalKafkaError,
    death_signal_prefix,
    file_tail,
    tail,
    terminate,
)

_LOG4J_CONFIG = Path(__file__).resolve().parent / "log4j2.properties"
_FORMAT_TIMEOUT_SECONDS = 120.0
_PROBE_TIMEOUT_SECONDS = 5.0


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
        self._process: subprocess.Popen[bytes] | None = None
        self._atexit_registered = False

    @property
    def data_dir(self) -> Path | None:
        """The broker's data directory (config, log segments, logs), None before ``start()``."""
        return self._data_dir

    @property
    def pid(self) -> int | None:
        """Process id of the running broker JVM, None when it is not running."""
        return self._process.pid if self._process is not None else None

    def is_running(self) -> bool:
        """Whether the broker process is alive (not whether it is ready)."""
        return self._process is not None and self._process.poll() is None

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
        java = _find_java()
        deadline = time.monotonic() + timeout_seconds
        data_dir = self._ensure_data_dir()
        settings = self._server_properties(data_dir)
        config = data_dir / "server.properties"
        config.write_text(_properties_text(settings))
        if not self._atexit_registered:
            # Stop the JVM and remove the temporary data when the interpreter exits normally,
            # even if nobody called close().
            atexit.register(self.close)
            self._atexit_registered = True
        # Format only a fresh directory: a restart must keep the cluster id and the data.
        if not (Path(settings["log.dirs"].split(",")[0]) / "meta.properties").is_file():
            self._format(java, libs, config, deadline)
        self._launch(java, libs, config, data_dir)
        try:
            self._wait_until_ready(deadline, timeout_seconds)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout_seconds: float = 30.0) -> None:
        """Stop the broker and wait until its process is gone; keep its ports and data.

        Sends SIGTERM (a clean shutdown that flushes the logs), and SIGKILL if the process is
        still there after ``timeout_seconds``. No-op if the broker is not running.
        """
        process, self._process = self._process, None
        if process is not None:
            terminate(process, timeout_seconds)

    def close(self, timeout_seconds: float = 30.0) -> None:
        """Stop the broker and delete its data directory unless it is the caller's or kept."""
        self.stop(timeout_seconds)
        if self._atexit_registered:
            atexit.unregister(self.close)
            self._atexit_registered = False
        if self._data_dir is not None and self._owns_data_dir and not self._keep_data:
            shutil.rmtree(self._data_dir, ignore_errors=True)
            self._data_dir = None

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
        if self._data_dir is None:
            return ""
        parts = []
        for path in (self._data_dir / "logs" / "server.log", self._data_dir / "console.log"):
            text = file_tail(path)
            if text:
                parts.append(f"--- last lines of {path} ---\n{text}")
        return "\n".join(parts)

    def _ensure_data_dir(self) -> Path:
        if self._data_dir is None:
            self._data_dir = Path(tempfile.mkdtemp(prefix="localkafka-"))
        (self._data_dir / "logs").mkdir(parents=True, exist_ok=True)
        return self._data_dir

    def _server_properties(self, data_dir: Path) -> dict[str, str]:
        controller = f"{HOST}:{self.controller_port}"
        settings = {
            "process.roles": "broker,controller",
            "node.id": str(NODE_ID),
            "controller.quorum.bootstrap.servers": controller,
            "controller.listener.names": "CONTROLLER",
            "listeners": f"PLAINTEXT://{self.bootstrap_servers},CONTROLLER://{controller}",
            "advertised.listeners": f"PLAINTEXT://{self.bootstrap_servers}",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(data_dir / "kraft"),
            "num.partitions": str(self.num_partitions),
            "auto.create.topics.enable": "true",
            # A single broker cannot hold more than one replica of the internal topics, and
            # fewer of their partitions make the first consumer group join faster.
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # Tests should not wait three seconds for every consumer group to form.
            "group.initial.rebalance.delay.ms": "0",
        }
        settings.update(self._extra_config)
        return settings

    def _java_command(self, java: str, libs: Path, data_dir: Path) -> list[str]:
        return [
            java,
            f"-Xmx{self._heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={_LOG4J_CONFIG}",
            f"-Dkafka.logs.dir={data_dir / 'logs'}",
            "-cp",
            f"{libs}/*",
        ]

    def _format(self, java: str, libs: Path, config: Path, deadline: float) -> None:
        """Format the empty data directory as a single-node cluster with a new cluster id."""
        assert self._data_dir is not None
        command = [
            *self._java_command(java, libs, self._data_dir),
            "kafka.tools.StorageTool",
            "format",
            "--config",
            str(config),
            "--cluster-id",
            _new_cluster_id(),
            "--standalone",
        ]
        timeout = max(1.0, min(_FORMAT_TIMEOUT_SECONDS, deadline - time.monotonic()))
        try:
            result = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise LocalKafkaError(f"formatting {self._data_dir} took over {timeout:.0f} s") from exc
        if result.returncode != 0:
            raise LocalKafkaError(
                f"formatting the Kafka data directory {self._data_dir} failed "
                f"(exit {result.returncode}):\n{tail(result.stdout)}"
            )

    def _launch(self, java: str, libs: Path, config: Path, data_dir: Path) -> None:
        command = [*self._java_command(java, libs, data_dir), "kafka.Kafka", str(config)]
        with (data_dir / "console.log").open("ab") as console:
            # Own session: Ctrl-C in a terminal reaches Python, which then stops the broker
            # cleanly, and stop() can signal the whole group.
            self._process = subprocess.Popen(
                [*death_signal_prefix(), *command],
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                cwd=data_dir,
                start_new_session=True,
            )

    def _wait_until_ready(self, deadline: float, timeout_seconds: float) -> None:
        while True:
            process = self._process
            assert process is not None
            code = process.poll()
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
            if port_accepts(self.port) and run_coroutine(
                functools.partial(broker_answers, self.bootstrap_servers, probe_timeout)
            ):
                return
            time.sleep(PROBE_INTERVAL_SECONDS)


# --- helpers ------------------------------------------------------------------------------------


def _find_java() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise LocalKafkaError(
            "Java 17 or newer is needed to run the local Kafka broker, but `java` is not on "
            "PATH and JAVA_HOME is not set (Debian: apt-get install openjdk-17-jre-headless)"
        )
    return java


def _new_cluster_id() -> str:
    """A random cluster id in Kafka's format: a UUID as unpadded URL-safe base64."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        # Kafka's own generator avoids a leading '-', which command lines take for an option.
        if not cluster_id.startswith("-"):
            return cluster_id


def _properties_text(settings: Mapping[str, str]) -> str:
    # Backslash is the escape character of .properties files; nothing else here needs escaping.
    lines = (key + "=" + value.replace("\\", "\\\\") + "\n" for key, value in settings.items())
    return "".join(lines)
