"""The publisher's murmur2 partitioner against aiokafka's (the Java client's algorithm)."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.kafka.partitioner import JavaPartitioner, murmur2


@settings(max_examples=2000)
@given(st.binary(max_size=80))
def test_murmur2_is_aiokafkas(key: bytes) -> None:
    assert murmur2(key) == aiokafka_murmur2(key)


@given(st.binary(max_size=40), st.integers(1, 64))
def test_keyed_records_go_where_aiokafka_puts_them(key: bytes, count: int) -> None:
    partitions = list(range(count))
    assert JavaPartitioner()(key, partitions, partitions) == DefaultPartitioner()(
        key, partitions, partitions
    )


def test_known_values() -> None:
    # From the Java client's own tests (UtilsTest.testMurmur2).
    assert murmur2(b"21") & 0xFFFFFFFF == (-973932308) & 0xFFFFFFFF
    assert murmur2(b"foobar") & 0xFFFFFFFF == (-790332482) & 0xFFFFFFFF
    assert murmur2(b"a-little-bit-long-string") & 0xFFFFFFFF == (-985981536) & 0xFFFFFFFF


def test_records_without_a_key_go_to_an_available_partition() -> None:
    assert JavaPartitioner()(None, [0, 1, 2], [2]) == 2
    assert JavaPartitioner()(None, [0, 1, 2], []) in {0, 1, 2}
