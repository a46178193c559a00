"""Local Kafka tooling: fetch Apache Kafka from Maven Central and run a throwaway broker
or a three-broker cluster.

``python -m gateway.localkafka fetch`` downloads the broker once; ``python -m gateway.localkafka
run`` starts one and prints ``KAFKA_BOOTSTRAP=127.0.0.1:PORT`` (``run --brokers 3``: a cluster,
and a comma-separated list). In code, use :class:`LocalKafka` or :class:`LocalKafkaCluster`.
"""

from gateway.localkafka.broker import LocalKafka
from gateway.localkafka.cluster import LocalKafkaCluster
from gateway.localkafka.fetching import CACHE_DIR_ENV, PINNED_VERSION, cache_root, fetch
from gateway.localkafka.process import LocalKafkaError
from gateway.localkafka.running import RunningKafka

__all__ = [
    "CACHE_DIR_ENV",
    "PINNED_VERSION",
    "LocalKafka",
    "LocalKafkaCluster",
    "LocalKafkaError",
    "RunningKafka",
    "cache_root",
    "fetch",
]
