"""Where a worker's CPU went: a py-spy ``--format raw`` profile summed by who asked for it.

Each sample is charged to the innermost frame of its stack that belongs to one of the
categories below (so aiokafka's socket write under faust's changelog producer counts as
faust's changelog path, and ``orjson.dumps`` called by the join counts as the join); samples
in none of them are the event loop's own work or idle waiting.

Run: ``.venv/bin/python bench/profile_summary.py PROFILE.txt [--top 25]``.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

# (category, pattern on "function (file:line)"), innermost-first matching: first hit wins
# for each frame, scanning the stack from its leaf to its root.
CATEGORIES: list[tuple[str, re.Pattern[str]]] = [
    ("idle: waiting in epoll/select", re.compile(r"select \(selectors\.py")),
    (
        "join logic (gateway.correlator join, model, records; events)",
        re.compile(
            r"\(gateway/(correlator/(join|model|records|route|deadlines)|events/|smpp/receipt)"
        ),
    ),
    (
        "outputs: acks and publisher (gateway)",
        re.compile(r"\(gateway/(correlator/(outputs|acks)|kafka/batching)"),
    ),
    ("route stage loop (gateway.correlator.router)", re.compile(r"\(gateway/correlator/router")),
    (
        "faust table writes and changelog",
        re.compile(r"\(faust/(tables|stores)/|ProducerBuffer|Topic\.publish_message|TableStore"),
    ),
    (
        "faust stream, agent and consumer machinery",
        re.compile(
            r"\(faust/(streams|agents|transport/consumer|transport/conductor|channels|events|"
            r"sensors|_cython)|\(mode/"
        ),
    ),
    (
        "faust agent body (gateway.correlator.reportjoin)",
        re.compile(r"\(gateway/correlator/reportjoin"),
    ),
    ("aiokafka producer", re.compile(r"\(aiokafka/(producer|record)/")),
    ("aiokafka consumer", re.compile(r"\(aiokafka/consumer/")),
    ("aiokafka client and connections", re.compile(r"\(aiokafka/")),
    ("metrics (prometheus_client)", re.compile(r"\(prometheus_client/")),
]
OTHER = "event loop and the rest"


def categorize(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, pattern in CATEGORIES:
            if pattern.search(frame):
                return name
    return OTHER


def summarize(path: Path, top: int) -> None:
    by_category: Counter[str] = Counter()
    by_leaf: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames, n = stack.split(";"), int(count)
        total += n
        by_category[categorize(frames)] += n
        by_leaf[re.sub(r":\d+\)", ")", frames[-1])] += n
    busy = total - by_category["idle: waiting in epoll/select"]
    print(f"{path.name}: {total} samples, {busy} not idle")
    for name, n in by_category.most_common():
        print(f"  {100 * n / total:5.1f} %  {name}")
    print(f"  top {top} innermost frames:")
    for frame, n in by_leaf.most_common(top):
        print(f"  {100 * n / total:5.1f} %  {frame}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profiles", type=Path, nargs="+")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    for path in args.profiles:
        summarize(path, args.top)


if __name__ == "__main__":
    main()
