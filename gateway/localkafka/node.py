"""One Kafka JVM: its directory, its server.properties, formatting, launching and ending it.

A node is Apache Kafka in KRaft mode holding both the broker and the controller role,
listening on 127.0.0.1 only. :class:`~gateway.localkafka.broker.LocalKafka` runs one (a
quorum of itself); :class:`~gateway.localkafka.cluster.LocalKafkaCluster` runs three that
form one quorum. What the node is part of is the caller's business: it hands in the
settings and the quorum arguments of the format command.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from gateway.localkafka.ports import HOST
from gateway.localkafka.process import (
    LocalKafkaError,
    death_signal_prefix,
    file_tail,
    kill,
    tail,
    terminate,
)

_LOG4J_CONFIG = Path(__file__).resolve().parent / "log4j2.properties"
_FORMAT_TIMEOUT_SECONDS = 120.0


class KafkaNode:
    """One KRaft node (broker and controller in one JVM) in ``directory``, on two ports.

    ``directory`` holds ``server.properties``, the log segments (``kraft/``), Kafka's own
    log (``logs/server.log``) and the JVM's console output (``console.log``). Nothing runs
    until :meth:`launch`; :meth:`stop` and :meth:`kill` end the process and keep the data.
    """

    def __init__(
        self, node_id: int, port: int, controller_port: int, directory: Path, heap: str
    ) -> None:
        self.node_id = node_id
        self.port = port
        self.controller_port = controller_port
        self.directory = directory
        self._heap = heap
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def controller_endpoint(self) -> str:
        return f"{HOST}:{self.controller_port}"

    @property
    def config_path(self) -> Path:
        return self.directory / "server.properties"

    @property
    def log_dir(self) -> Path:
        return self.directory / "kraft"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def exit_code(self) -> int | None:
        """The exit status if the JVM was launched and has ended since, else None."""
        return self._process.poll() if self._process is not None else None

    def listener_properties(self) -> dict[str, str]:
        """The node's identity and listeners; the caller adds the quorum and the rest."""
        return {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.listener.names": "CONTROLLER",
            "listeners": f"PLAINTEXT://{self.bootstrap},CONTROLLER://{self.controller_endpoint}",
            "advertised.listeners": (
                f"PLAINTEXT://{self.bootstrap},CONTROLLER://{self.controller_endpoint}"
            ),
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.log_dir),
        }

    def write_config(self, settings: Mapping[str, str]) -> None:
        (self.directory / "logs").mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(_properties_text(settings))

    def formatted(self) -> bool:
        return (self.log_dir / "meta.properties").is_file()

    def format(self, java: str, libs: Path, quorum: Sequence[str], deadline: float) -> None:
        """Format the empty log directory; ``quorum`` holds the cluster id and the voters."""
        command = [
            *self._java_command(java, libs),
            "kafka.tools.StorageTool",
            "format",
            "--config",
            str(self.config_path),
            *quorum,
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
            raise LocalKafkaError(f"formatting {self.directory} took over {timeout:.0f} s") from exc
        if result.returncode != 0:
            raise LocalKafkaError(
                f"formatting the Kafka data directory {self.directory} failed "
                f"(exit {result.returncode}):\n{tail(result.stdout)}"
            )

    def launch(self, java: str, libs: Path) -> None:
        command = [*self._java_command(java, libs), "kafka.Kafka", str(self.config_path)]
        with (self.directory / "console.log").open("ab") as console:
            # Own session: Ctrl-C in a terminal reaches Python, which then stops the broker
            # cleanly, and stop() can signal the whole group.
            self._process = subprocess.Popen(
                [*death_signal_prefix(), *command],
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                start_new_session=True,
            )

    def stop(self, timeout_seconds: float) -> None:
        """SIGTERM (a controlled shutdown), SIGKILL after ``timeout_seconds``; no-op if down."""
        process, self._process = self._process, None
        if process is not None:
            terminate(process, timeout_seconds)

    def kill(self) -> None:
        """SIGKILL, as a crashed machine: no controlled shutdown, no flush; no-op if down."""
        process, self._process = self._process, None
        if process is not None:
            kill(process)

    def log_tail(self) -> str:
        """The last lines of Kafka's log and of the JVM's console output."""
        parts = []
        for path in (self.directory / "logs" / "server.log", self.directory / "console.log"):
            text = file_tail(path)
            if text:
                parts.append(f"--- last lines of {path} ---\n{text}")
        return "\n".join(parts)

    def _java_command(self, java: str, libs: Path) -> list[str]:
        return [
            java,
            f"-Xmx{self._heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={_LOG4J_CONFIG}",
            f"-Dkafka.logs.dir={self.directory / 'logs'}",
            "-cp",
            f"{libs}/*",
        ]


def find_java() -> str:
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


def new_kafka_uuid() -> str:
    """A random id in Kafka's format (cluster ids, directory ids): a UUID as unpadded
    URL-safe base64."""
    while True:
        value = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        # Kafka's own generator avoids a leading '-', which command lines take for an option.
        if not value.startswith("-"):
            return value


def _properties_text(settings: Mapping[str, str]) -> str:
    # Backslash is the escape character of .properties files; nothing else here needs escaping.
    lines = (key + "=" + value.replace("\\", "\\\\") + "\n" for key, value in settings.items())
    return "".join(lines)
