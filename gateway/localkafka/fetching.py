"""Fetching the broker: Apache Kafka's jars from Maven Central, cached per version.

The jars come through ``pom.xml`` beside this file and are cached under
``<repo>/.cache/kafka/<version>/libs`` or ``$GATEWAY_KAFKA_CACHE_DIR/<version>/libs``.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

from gateway.localkafka.process import LocalKafkaError, death_signal_prefix, tail

#: Kafka release fetched and run by default; keep in step with ``kafka.version`` in pom.xml.
PINNED_VERSION = "4.3.1"
#: Environment variable naming the cache directory (one sub-directory per Kafka version).
CACHE_DIR_ENV = "GATEWAY_KAFKA_CACHE_DIR"

_PACKAGE_DIR = Path(__file__).resolve().parent
_POM = _PACKAGE_DIR / "pom.xml"
_MARKER = ".complete"
_MAVEN_TIMEOUT_SECONDS = 900.0

# Maven 3.8 colours some output even in batch mode.
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


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
        *death_signal_prefix(),
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
            f"{tail(_ANSI_ESCAPE.sub('', result.stdout))}"
        )
    if not (partial / f"kafka_2.13-{version}.jar").is_file():
        raise LocalKafkaError(f"mvn succeeded but {partial} has no kafka_2.13-{version}.jar")
    shutil.rmtree(libs, ignore_errors=True)
    partial.rename(libs)
