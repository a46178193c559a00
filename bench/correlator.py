"""Correlator benchmark: reports joined per second by one worker, and table recovery time.

Throughput: N accepted send results (one single-part recipient each) and their N delivery
reports are produced before the correlator starts; one correlator worker (in this process,
the faust app in this loop) then routes and joins them all. Measured between the moment 10 %
of the part statuses are on Kafka and the moment all are, so start-up and the group join are
left out. Each report costs two agent steps (route, join) and produces a route record, a
part status, a message status and a changelog record.

Recovery: a parts changelog of M entries (M = 1,000,000 by default) is written straight to
Kafka, then a worker is started on it and timed until its tables are recovered and indexed:
with the in-memory store (the whole changelog is read), with RocksDB on an empty data
directory (the same), and with RocksDB on the directory the previous run left (only what the
changelog gained since is read).

Run: ``.venv/bin/python bench/correlator.py [--reports N] [--entries M]``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.config import HttpSettings, KafkaSettings, Settings, TopicSettings
from gateway.correlator.faustapp import CorrelatorApp
from gateway.correlator.model import PartEntry, encode_entry, part_key
from gateway.correlator.runner import run_correlator
from gateway.correlator.settings import CorrelatorSettings
from gateway.correlator.topology import prepare_topics
from gateway.localkafka import LocalKafka
from gateway.metrics import Metrics
from tests.correlator.runkit import build_traffic

PARTITIONS = 3


def settings_for(kafka: LocalKafka, run: str, store: str, data_dir: str) -> Settings:
    topics = TopicSettings(
        **{
            f.name: f"{getattr(TopicSettings(), f.name)}.{run}"
            for f in dataclasses.fields(TopicSettings)
        }
    )
    correlator = CorrelatorSettings(
        app_id=f"bench-{run}",
        route_topic=f"bench-route-{run}",
        partitions=PARTITIONS,
        replication_factor=1,
        store=store,
        data_dir=data_dir,
        hold_seconds=600.0,
    )
    return Settings(
        kafka=KafkaSettings(bootstrap_servers=kafka.bootstrap_servers),
        topics=topics,
        http=HttpSettings(host="127.0.0.1", port=0),
        correlator=correlator,
    )


async def produce(bootstrap: str, records: list[tuple[str, bytes, bytes, int | None]]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=1024 * 1024
    )
    await producer.start()
    try:
        for topic, key, value, partition in records:
            await producer.send(topic, value, key=key, partition=partition)
        await producer.flush()
    finally:
        await producer.stop()


async def throughput(kafka: LocalKafka, reports: int, store: str) -> None:
    run = uuid.uuid4().hex[:6]
    data_dir = tempfile.mkdtemp(prefix="bench-correlator-")
    settings = settings_for(kafka, run, store, data_dir)
    topics = settings.topics
    kafka.create_topics([topics.send_results, topics.dlr, topics.status, topics.dead_letter], 3)
    traffic = build_traffic(topics, run, reports, 0, seed=1, long=False)
    await produce(kafka.bootstrap_servers, [(*r, None) for r in traffic.records])
    stop = asyncio.Event()
    worker = asyncio.create_task(run_correlator(settings, Metrics(), stop))
    try:
        marks = await _count_parts(kafka.bootstrap_servers, topics.status, reports)
    finally:
        stop.set()
        await worker
        shutil.rmtree(data_dir, ignore_errors=True)
    (t10, n10), (t100, n100) = marks
    rate = (n100 - n10) / (t100 - t10)
    print(
        f"store={store} reports={reports}: {rate:,.0f} reports joined/s "
        f"({2 * rate:,.0f} input records/s, measured over {t100 - t10:.1f} s)"
    )


async def _count_parts(
    bootstrap: str, topic: str, want: int
) -> tuple[tuple[float, int], tuple[float, int]]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    parts, first = 0, None
    try:
        while parts < want:
            batch = await consumer.getmany(timeout_ms=200, max_records=10000)
            for message in (m for ms in batch.values() for m in ms):
                parts += orjson.loads(message.value)["scope"] == "part"
            if first is None and parts >= want // 10:
                first = (time.monotonic(), parts)
        assert first is not None
        return first, (time.monotonic(), parts)
    finally:
        await consumer.stop()


def changelog_records(topic: str, entries: int) -> list[tuple[str, bytes, bytes, int | None]]:
    now = time.time()
    records: list[tuple[str, bytes, bytes, int | None]] = []
    for i in range(entries):
        phone, message_id = f"7900{i:07d}", str(50_000_000 + i)
        entry = PartEntry(
            request_id=f"bench-{i}",
            phone=phone,
            tags={"campaign": "bench"},
            submitted_at=now,
            message_ids=(message_id,),
            index=1,
            partition=i % PARTITIONS,
            expires_at=now + 86400,
        )
        key = part_key(message_id, phone).encode()
        records.append((topic, key, encode_entry(entry), i % PARTITIONS))
    return records


async def recovery(kafka: LocalKafka, entries: int) -> None:
    run = uuid.uuid4().hex[:6]
    data_dir = tempfile.mkdtemp(prefix="bench-correlator-")
    settings = settings_for(kafka, run, "memory", data_dir)
    kafka.create_topics([settings.topics.send_results, settings.topics.dlr], 3)
    probe = CorrelatorApp(settings, Metrics())
    stop = asyncio.Event()
    await prepare_topics(
        settings.kafka, settings.correlator, probe.changelog_topics, [settings.topics.dlr], stop
    )
    started = time.monotonic()
    await produce(kafka.bootstrap_servers, changelog_records(probe.changelog_topics[0], entries))
    print(f"wrote a {entries:,}-entry parts changelog in {time.monotonic() - started:.1f} s")
    for store, label in (
        ("memory", "memory"),
        ("rocksdb", "rocksdb, empty dir"),
        ("rocksdb", "rocksdb, dir kept"),
    ):
        seconds, count = await _recover(settings, store)
        print(f"recovery, {label}: {count:,} entries in {seconds:.1f} s")
    shutil.rmtree(data_dir, ignore_errors=True)


async def _recover(settings: Settings, store: str) -> tuple[float, int]:
    correlator = dataclasses.replace(settings.correlator, store=store)
    worker = CorrelatorApp(dataclasses.replace(settings, correlator=correlator), Metrics())
    started = time.monotonic()
    await worker.app.start()
    try:
        await worker.recovered.wait()
        return time.monotonic() - started, worker.correlator.part_count
    finally:
        await worker.app.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=20000)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--stores", default="rocksdb,memory")
    args = parser.parse_args()
    with LocalKafka(num_partitions=3) as kafka:
        for store in args.stores.split(","):
            await throughput(kafka, args.reports, store)
        if args.entries:
            await recovery(kafka, args.entries)


if __name__ == "__main__":
    asyncio.run(main())
