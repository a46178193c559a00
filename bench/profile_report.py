"""Where a process's CPU went, from a py-spy ``--format raw`` profile (folded stacks).

``bench/send_pipeline.py --py-spy DIR`` writes one per window (the sender sampled with
``--native``, so C frames such as the cyclic garbage collector's show). This prints:

- the groups the send path's cost is discussed in (docs/benchmarks.md): each sample goes to
  the garbage collector if it is inside a collection, to Prometheus if any frame is
  ``prometheus_client``'s, else to the specific group (composition, parsing, result event,
  publishing, consuming, SMPP) of the frame nearest the leaf that has one, else to the
  sender's glue (any other gateway frame) or aiokafka's connection, else to "event loop,
  sockets, other";
- the top frames by self time (the leaf; a C function, or a method a dataclass generated,
  named with the Python function that called it) and, among the gateway's, aiokafka's and
  prometheus_client's functions, by total time (every stack a function appears in, counted
  once).

Run: ``.venv/bin/python bench/profile_report.py PROFILE [--top N]``.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

GC = "cyclic garbage collection"
PROMETHEUS = "prometheus updates"
OTHER = "event loop, sockets, other"

# (group, pattern on "function (file)"): the specific groups are looked for first, from the
# leaf up; a stack none of them claims goes to the first generic group any frame matches.
SPECIFIC: Sequence[tuple[str, re.Pattern[str]]] = [
    ("composition", re.compile(r"gateway/compose/")),
    ("request parsing and validation", re.compile(r"gateway/events/send_request\.py")),
    ("result event building", re.compile(r"gateway/events/(send_result|envelope)\.py")),
    (
        "result publishing (aiokafka producer)",
        re.compile(
            r"aiokafka/producer/|gateway/kafka/batching\.py"
            r"|^(\w+\.)?(publish|enqueue|_delivered|_publish_all) \("
        ),
    ),
    (
        "Kafka consuming and commits",
        re.compile(
            r"aiokafka/consumer/|aiokafka/record|gateway/kafka/(lag|records)\.py"
            r"|^(\w+\.)?(fetch|caught_up|commit) \(gateway/kafka/client\.py"
        ),
    ),
    ("SMPP encode and session", re.compile(r"gateway/(smpp|smpp_io)/")),
]
GENERIC: Sequence[tuple[str, re.Pattern[str]]] = [
    ("sender glue (lanes, order, exposure, claims, guards, pacing)", re.compile(r"gateway/")),
    ("aiokafka connection, other", re.compile(r"aiokafka/")),
]
# The code the total-time table is about (runpy's, asyncio's and libc's frames are in every
# stack).
OWN_CODE = re.compile(r"\((gateway|aiokafka|prometheus_client)/")
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def stacks(path: Path) -> Iterator[tuple[list[str], int]]:
    """(frames root first, samples) per line; frames as ``function (file)``, lines dropped."""
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack:
            yield [_frame(f) for f in stack.split(";")], int(count)


def _frame(raw: str) -> str:
    found = FRAME.match(raw)
    if found is None:
        return raw
    return f"{found['function']} ({_short(found['file'])})"


def _short(file: str) -> str:
    for marker in ("site-packages/", "/lib/python3", "/gateway/"):
        at = file.find(marker)
        if at >= 0:
            return ("gateway/" if marker == "/gateway/" else "") + file[at + len(marker) :]
    return file


def _self_name(frames: Sequence[str]) -> str:
    """The leaf; a C function or a dataclass's generated method named with its caller."""
    leaf = frames[-1]
    if _collecting(frames):
        return "the cyclic garbage collector (gc_collect_main and what it calls)"
    if len(frames) > 1 and re.search(r"\((<string>|[^()]*\.(so[.\d]*|c|h))\)$", leaf):
        callers = [f for f in reversed(frames[:-1]) if re.search(r"\.py\)$", f)]
        if callers:
            return f"{leaf} ← {callers[0]}"
    return leaf


def _collecting(frames: Sequence[str]) -> bool:
    """Whether the sample is inside a collection (set off by whichever allocation came when
    a generation was full, so its callers say nothing)."""
    return any(f.startswith("gc_collect") for f in frames)


def group_of(frames: Sequence[str]) -> str:
    if _collecting(frames):
        return GC
    if any("prometheus_client" in f for f in frames):
        return PROMETHEUS
    for table in (SPECIFIC, GENERIC):
        for frame in reversed(frames):
            for name, pattern in table:
                if pattern.search(frame):
                    return name
    return OTHER


def report(path: Path, top: int) -> None:
    groups: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    total_time: Counter[str] = Counter()
    samples = 0
    for frames, count in stacks(path):
        samples += count
        groups[group_of(frames)] += count
        self_time[_self_name(frames)] += count
        for frame in set(frames):
            if OWN_CODE.search(frame):
                total_time[frame] += count
    print(f"{path}: {samples} samples\n")
    _table("group", groups.most_common(), samples)
    _table(f"top {top} by self", self_time.most_common(top), samples)
    _table(
        f"top {top} of the gateway's, aiokafka's, Prometheus' by total",
        total_time.most_common(top),
        samples,
    )


def _table(title: str, rows: Sequence[tuple[str, int]], samples: int) -> None:
    print(f"| {title} | share |\n|---|---:|")
    for name, count in rows:
        print(f"| `{name}` | {100 * count / samples:.1f} % |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    report(args.profile, args.top)


if __name__ == "__main__":
    main()
