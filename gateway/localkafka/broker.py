"""A throwaway single-node Kafka broker for tests, demos and benchmarks.

The broker is Apache Kafka in KRaft mode, one JVM holding both the broker and the controller
role, listening on 127.0.0.1 only. Its jars come from Maven Central through ``pom.xml`` beside
this file and are cached, per Kafka version, under ``<repo>/.cache/kafka/<version>/libs`` or
``$GATEWAY_KAFKA_CACHE_DIR/<version>/libs``.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import concurrent.futures
import contextlib
import fcntl
import functools
import hashlib
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

#: Kafka release fetched and run by default; keep in step with ``kafka.version`` in pom.xml.
PINNED_VERSION = "4.3.1"
#: Environment variable naming the cache directory (one sub-directory per Kafka version).
CACHE_DIR_ENV = "GATEWAY_KAFKA_CACHE_DIR"

_PACKAGE_DIR = Path(__file__).resolve().parent
_POM = _PACKAGE_DIR / "pom.xml"
_LOG4J_CONFIG = _PACKAGE_DIR / "log4j2.properties"
_MARKER = ".complete"
_NODE_ID = 1
_HOST = "127.0.0.1"
_TAIL_LINES = 40
_TAIL_BYTES = 64 * 1024
_MAVEN_TIMEOUT_SECONDS = 900.0
_FORMAT_TIMEOUT_SECONDS = 120.0
_PROBE_INTERVAL_SECONDS = 0.2
_PROBE_TIMEOUT_SECONDS = 5.0
_TOPIC_ALREADY_EXISTS = 36
_LOWEST_PORT = 10000
_PORT_ATTEMPTS = 200

# Maven 3.8 colours some output even in batch mode.
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")

_T = TypeVar("_T")


class LocalKafkaError(Exception):
    """The local broker could not be fetched, started or used; the message says why."""


# --- fetching the broker jars -------------------------------------------------------------------


def cache_root() -> Path:
    """Return the directory that holds one ``<version>/libs`` sub-directory per Kafka version.

    ``$GATEWAY_KAFKA_CACHE_DIR`` wins; otherwise ``<repo>/.cache/kafka`` in a source checkout,
    or ``~/.cache/gateway-localkafka`` when the package is installed outside one.
    """
    configured = os.environ.get(CACHE_DIR_ENV)
    if configured:
        return Path(configured).expanduser().resolve()
    repo = _PACKAGE_DIR.parents[1]
    if (repo / "pyproject.toml").is_file():
        return repo / ".cache" / "kafka"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gateway-localkafka"


def fetch(version: str = PINNED_VERSION) -> Path:
    """Return the directory holding Kafka ``version``'s jars, downloading them if not cached.

    Only a complete download counts: the marker file is written after Maven succeeded, and it
    records the pom.xml digest, so an interrupted fetch or a changed pom.xml fetches anew.
    Concurrent callers (several test processes) wait for one another instead of racing.
    Raises LocalKafkaError if Maven is missing or fails.
    """
    version_dir = cache_root() / version
    libs = version_dir / "libs"
    marker = version_dir / _MARKER
    stamp = hashlib.sha256(_POM.read_bytes()).hexdigest()
    version_dir.mkdir(parents=True, exist_ok=True)
    with (version_dir / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if libs.is_dir() and marker.is_file() and marker.read_text().strip() == stamp:
            return libs
        marker.unlink(missing_ok=True)
        _download(version, version_dir / "libs.partial", libs)
        marker.write_text(stamp + "\n")
    return libs


def _download(version: str, partial: Path, libs: Path) -> None:
    """Copy Kafka ``version`` and its runtime dependencies from Maven into ``libs``."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise LocalKafkaError(
            "Maven (mvn) is not on PATH; it is needed once to download the Kafka broker jars "
            "(Debian: apt-get install maven)"
        )
    shutil.rmtree(partial, ignore_errors=True)
    command = [
        # A killed test run must not leave Maven writing into the cache behind its back.
        *_death_signal_prefix(),
        mvn,
        "-B",
        "-q",
        "-Dstyle.color=never",
        # Central occasionally drops a connection; retry instead of failing the whole fetch.
        "-Dmaven.wagon.http.retryHandler.count=3",
        "-f",
        str(_POM),
        f"-Dkafka.version={version}",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={partial}",
        "dependency:copy-dependencies",
    ]
    try:
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=_MAVEN_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise LocalKafkaError(
            f"mvn did not finish fetching Kafka {version} within {_MAVEN_TIMEOUT_SECONDS:.0f} s"
        ) from exc
    if result.returncode != 0:
        raise LocalKafkaError(
            f"mvn failed (exit {result.returncode}) fetching Kafka {version}:\n"
            f"{_tail(_ANSI_ESCAPE.sub('', result.stdout))}"
        )
    if not (partial / f"kafka_2.13-{version}.jar").is_file():
        raise LocalKafkaError(f"mvn succeeded but {partial} has no kafka_2.13-{version}.jar")
    shutil.rmtree(libs, ignore_errors=True)
    partial.rename(libs)


# --- the broker ---------------------------------------------------------------------------------


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
        broker_port, controller_port = _free_ports(2)
        self.port = port or broker_port
        self.controller_port = controller_port
        self.bootstrap_servers = f"{_HOST}:{self.port}"
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
            _terminate(process, timeout_seconds)

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
        _run_coroutine(
            lambda: _create_topics(self.bootstrap_servers, list(names), partitions, timeout_seconds)
        )

    def log_tail(self) -> str:
        """The last lines of the broker's log and of the JVM's console output, for diagnostics."""
        if self._data_dir is None:
            return ""
        parts = []
        for path in (self._data_dir / "logs" / "server.log", self._data_dir / "console.log"):
            text = _file_tail(path)
            if text:
                parts.append(f"--- last lines of {path} ---\n{text}")
        return "\n".join(parts)

    def _ensure_data_dir(self) -> Path:
        if self._data_dir is None:
            self._data_dir = Path(tempfile.mkdtemp(prefix="localkafka-"))
        (self._data_dir / "logs").mkdir(parents=True, exist_ok=True)
        return self._data_dir

    def _server_properties(self, data_dir: Path) -> dict[str, str]:
        controller = f"{_HOST}:{self.controller_port}"
        settings = {
            "process.roles": "broker,controller",
            "node.id": str(_NODE_ID),
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
                f"(exit {result.returncode}):\n{_tail(result.stdout)}"
            )

    def _launch(self, java: str, libs: Path, config: Path, data_dir: Path) -> None:
        command = [*self._java_command(java, libs, data_dir), "kafka.Kafka", str(config)]
        with (data_dir / "console.log").open("ab") as console:
            # Own session: Ctrl-C in a terminal reaches Python, which then stops the broker
            # cleanly, and stop() can signal the whole group.
            self._process = subprocess.Popen(
                [*_death_signal_prefix(), *command],
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
            if _port_accepts(self.port) and _run_coroutine(
                functools.partial(_broker_answers, self.bootstrap_servers, probe_timeout)
            ):
                return
            time.sleep(_PROBE_INTERVAL_SECONDS)


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


def _death_signal_prefix() -> list[str]:
    """A command prefix that makes the kernel SIGKILL the child if this process dies.

    This is what keeps a JVM (broker or Maven) from outliving a Python process that was
    killed (atexit does not run then). The kernel ties the signal to the *thread* that started
    the child, so it is only used from the main thread, whose end is the end of the process.
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None or threading.current_thread() is not threading.main_thread():
        return []
    return [setpriv, "--pdeathsig", "KILL", "--"]


def _terminate(process: subprocess.Popen[bytes], timeout_seconds: float) -> None:
    """End ``process`` (and its process group): SIGTERM, then SIGKILL after the timeout."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout_seconds)
            return
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _free_ports(count: int) -> list[int]:
    """Distinct ports, below the kernel's ephemeral range, that were free on 127.0.0.1 just now.

    Ports from the ephemeral range would be simpler to get, but the kernel also hands those
    out to outgoing connections: a client reconnecting while the broker is stopped could take
    the broker's port and make the restart fail.
    """
    low = _ephemeral_port_range_start()
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        for _ in range(_PORT_ATTEMPTS):
            sock = stack.enter_context(socket.socket())
            port = random.randrange(_LOWEST_PORT, low) if low > _LOWEST_PORT else 0
            with contextlib.suppress(OSError):
                sock.bind((_HOST, port))
                ports.append(int(sock.getsockname()[1]))
            if len(ports) == count:
                return ports
    raise LocalKafkaError(f"found no {count} free ports on {_HOST}")


def _ephemeral_port_range_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _port_accepts(port: int) -> bool:
    try:
        with socket.create_connection((_HOST, port), timeout=1.0):
            return True
    except OSError:
        return False


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


def _tail(text: str, lines: int = _TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _file_tail(path: Path) -> str:
    try:
        with path.open("rb") as file:
            file.seek(max(0, path.stat().st_size - _TAIL_BYTES))
            return _tail(file.read().decode(errors="replace"))
    except OSError:
        return ""


def _run_coroutine(factory: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """Run a coroutine to completion on a private event loop in a helper thread.

    The helper thread lets the synchronous API be called from inside a running event loop
    (async tests), where ``asyncio.run`` would refuse to start.
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


async def _broker_answers(bootstrap_servers: str, timeout_seconds: float) -> bool:
    """Whether the broker answers a metadata request listing itself as an available broker."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout_seconds * 1000)
    )
    try:
        async with asyncio.timeout(timeout_seconds):
            await admin.start()
            cluster = await admin.describe_cluster()
    except (KafkaError, OSError, TimeoutError):
        return False
    finally:
        await admin.close()
    return any(broker["node_id"] == _NODE_ID for broker in cluster["brokers"])


async def _create_topics(
    bootstrap_servers: str, names: list[str], partitions: int, timeout_seconds: float
) -> None:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout_seconds * 1000)
    )
    try:
        async with asyncio.timeout(timeout_seconds):
            await admin.start()
            response = await admin.create_topics([NewTopic(name, partitions, 1) for name in names])
            failures = [
                f"{error[0]}: error {error[1]} {error[2] if len(error) > 2 else ''}".rstrip()
                for error in response.topic_errors
                if error[1] not in (0, _TOPIC_ALREADY_EXISTS)
            ]
            if failures:
                raise LocalKafkaError("creating topics failed: " + "; ".join(failures))
            # Creation is acknowledged before leaders are elected; producers started right
            # away would otherwise see transient errors.
            while True:
                if await _all_have_leaders(admin, names):
                    return
                await asyncio.sleep(_PROBE_INTERVAL_SECONDS)
    except (KafkaError, TimeoutError) as exc:
        raise LocalKafkaError(f"creating topics {names} failed: {exc!r}") from exc
    finally:
        await admin.close()


async def _all_have_leaders(admin: Any, names: list[str]) -> bool:
    topics = await admin.describe_topics(names)
    return len(topics) == len(names) and all(
        topic["error_code"] == 0
        and topic["partitions"]
        and all(partition["leader"] >= 0 for partition in topic["partitions"])
        for topic in topics
    )
