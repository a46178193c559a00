"""Local Kafka tooling: fetch Apache Kafka from Maven Central and run a throwaway broker.

``python -m gateway.localkafka fetch`` downloads the broker once; ``python -m gateway.localkafka
run`` starts one and prints ``KAFKA_BOOTSTRAP=127.0.0.1:PORT``. In code, use :class:`LocalKafka`.
"""

from gateway.localkafka.broker import LocalKafka
from gateway.localkafka.fetching import CACHE_DIR_ENV, PINNED_VERSION, cache_root, fetch
from gateway.localkafka.process import LocalKafkaError

__all__ = [
    "CACHE_DIR_ENV",
    "PINNED_VERSION",
    "LocalKafka",
    "LocalKafkaError",
    "cache_root",
    "fetch",
]
