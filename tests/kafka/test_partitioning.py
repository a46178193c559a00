"""The key partitioner: the same hash as aiokafka's and the Java client's, the same partition
as aiokafka's DefaultPartitioner for every key, and keyless records spread over the available
partitions."""

from __future__ import annotations

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.kafka.partitioning import KeyPartitioner, murmur2, partition_of

# org.apache.kafka.common.utils.UtilsTest.testMurmur2 (signed 32-bit, as Java prints them).
JAVA_HASHES = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
]
# The Java client's partition of these keys among 1,000 partitions.
JAVA_PARTITIONS = [
    (b"", 681),
    (b"a", 524),
    (b"ab", 434),
    (b"abc", 107),
    (b"123456789", 566),
    (b"\x00 ", 742),
]


@pytest.mark.parametrize(("key", "signed"), JAVA_HASHES)
def test_the_hash_is_the_java_clients(key: bytes, signed: int) -> None:
    assert murmur2(key) == signed & 0xFFFFFFFF


@pytest.mark.parametrize(("key", "partition"), JAVA_PARTITIONS)
def test_the_partition_is_the_java_clients(key: bytes, partition: int) -> None:
    assert partition_of(key, 1000) == partition
    assert KeyPartitioner()(key, list(range(1000)), []) == partition


@settings(max_examples=2000)
@given(st.binary(max_size=300))
def test_the_hash_equals_aiokafkas(key: bytes) -> None:
    assert murmur2(key) == aiokafka_murmur2(key)


def test_the_hash_equals_aiokafkas_at_every_length() -> None:
    for length in range(300):
        key = bytes((i * 131 + length * 7) % 256 for i in range(length))
        assert murmur2(key) == aiokafka_murmur2(key), length
        assert murmur2(b"\xff" * length) == aiokafka_murmur2(b"\xff" * length), length


@given(
    st.one_of(
        st.binary(max_size=64),
        st.integers(min_value=0, max_value=10**12).map(lambda n: str(n).encode()),
    ),
    st.integers(min_value=1, max_value=200),
)
def test_the_partition_equals_the_default_partitioners(key: bytes, partitions: int) -> None:
    ids = list(range(partitions))
    assert KeyPartitioner()(key, ids, ids) == DefaultPartitioner()(key, ids, ids)
    assert partition_of(key, partitions) == DefaultPartitioner()(key, ids, [])


def test_records_without_a_key_go_to_an_available_partition() -> None:
    partitioner = KeyPartitioner()
    chosen = {partitioner(None, [0, 1, 2, 3], [1, 3]) for _ in range(200)}
    assert chosen == {1, 3}
    assert {partitioner(None, [0, 1, 2], []) for _ in range(200)} == {0, 1, 2}
