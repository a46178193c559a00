"""The Java client's partitioner (murmur2 of the key), a few times cheaper than aiokafka's.

A keyed record must land on the partition every other writer of the topic picks for its key:
``murmur2(key) & 0x7fffffff`` modulo the partition count, as
``org.apache.kafka.common.utils.Utils.murmur2`` computes it and ``aiokafka.partitioner``
copies it. aiokafka's copy reads the key a byte at a time and masks after every step; this
one reads it in 32-bit little-endian words with one ``struct`` call and masks only where a
value can pass 32 bits, which is what a publisher of thousands of results a second pays per
record. ``tests/kafka/test_partitioner.py`` holds it equal to aiokafka's over arbitrary
keys.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Sequence

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_WORDS: dict[int, struct.Struct] = {}


def murmur2(data: bytes) -> int:
    """MurmurHash2 of ``data`` as the Java Kafka client computes it (unsigned 32 bits)."""
    length = len(data)
    h = _SEED ^ length
    count = length >> 2
    if count:
        words = _WORDS.get(count)
        if words is None:
            words = _WORDS[count] = struct.Struct(f"<{count}I")
        for word in words.unpack_from(data):
            k = (word * _M) & _MASK
            k ^= k >> 24
            h = ((h * _M) & _MASK) ^ ((k * _M) & _MASK)
    tail = length & 3
    if tail:
        end = length & ~3
        if tail >= 3:
            h ^= data[end + 2] << 16
        if tail >= 2:
            h ^= data[end + 1] << 8
        h = ((h ^ data[end]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


class JavaPartitioner:
    """What aiokafka's ``DefaultPartitioner`` does, with :func:`murmur2` for keyed records
    (a random available partition for a record without a key)."""

    def __call__(
        self, key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]
    ) -> int:
        if key is None:
            return random.choice(available or all_partitions)
        return all_partitions[(murmur2(key) & 0x7FFFFFFF) % len(all_partitions)]
