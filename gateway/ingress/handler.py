"""One callback in, one answer out: checks, publishing, and the answer codes.

The provider repeats a callback (every 4 minutes, 50 times) unless it gets 200 or 404, so:

- 200 only once Kafka acknowledged the event (idempotent producer, acks=all);
- 503 when Kafka cannot take it (or the dead letter) in time: the provider tries again;
- 403 for a forged signature, an unsigned callback under ``unsigned_policy=reject``, a peer
  outside the allowed networks or a wrong path token; nothing is published. A 403 is
  retried too, which gives an operator who mistyped the secret 200 minutes to fix it;
- 400 for a callback that is authentic (or unsigned and accepted) but cannot be used, and
  for a body that cannot be read at all: it is put on the dead-letter topic first, with the
  reason and the original bytes. The provider sends it again and each copy is
  dead-lettered with the same event id, so a fix deployed within the retry window still
  gets the callback through;
- 404 is never sent for a callback: it would make the provider drop it.

No HTTP here: the server adapter turns HTTP into a :class:`CallbackRequest` and back.

Two ways in. :meth:`CallbackHandler.take` answers through a callback and, for the usual
callback (:mod:`gateway.ingress.fast`), needs no task: the event is handed to the
publisher's ``offer`` and the answer given from its acknowledgement, with the publish
timeout from a shared per-slot timer. Every other callback, and :meth:`CallbackHandler.handle`,
takes the general path in a coroutine. Both give the same answers and the same events.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from gateway.errors import GatewayError, KafkaRecordRefusedError
from gateway.events.dead_letter import Origin, dead_letter_event
from gateway.events.envelope import dumps, utc_now
from gateway.metrics import Children, Metrics
from gateway.settings import TopicSettings
from gateway.settings.ingress import DEFAULT_CHARSET, IngressSettings, canonical_charset

from .access import AccessPolicy
from .callback import Callback, parse_callback
from .deadline import Expiring, SlottedTimeout
from .fast import usual_event
from .health import WriteHealth
from .mapping import callback_event
from .metrics import IngressMetrics, Refusal
from .params import CallbackRequest, Kind, Rejection
from .signature import SignatureCheck, Verdict, check_signature

log = logging.getLogger(__name__)

ROLE = "ingress"
_DETAIL_LIMIT = 2000


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    text: str
    body: bytes  # the text as the HTTP body: UTF-8, one line


def answer(status: int, text: str) -> Answer:
    return Answer(status, text, f"{text}\n".encode())


OK = answer(200, "OK")
FORBIDDEN = answer(403, "forbidden")
UNAVAILABLE = answer(503, "kafka unavailable, try again later")
TOO_LARGE = answer(413, "body too large")

Reply = Callable[[Answer], None]
# How the publisher tells of a record: None once acknowledged, else the error; and the
# seconds it took (gateway.kafka.batching.Settle).
Settle = Callable[[GatewayError | None, float], None]


class OfferingPublisher(Protocol):
    def offer(self, topic: str, key: bytes | None, value: bytes, settle: Settle) -> None:
        """Take the record now; ``settle`` is called once Kafka acknowledged it (acks=all),
        or with the error when it cannot be stored."""


class CallbackHandler:
    """Turns a callback into its event on Kafka and says what to answer."""

    def __init__(
        self,
        settings: IngressSettings,
        topics: TopicSettings,
        publisher: OfferingPublisher,
        *,
        metrics: Metrics,
        ingress_metrics: IngressMetrics,
        health: WriteHealth,
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._topics = {
            Kind.STATUS: topics.dlr,
            Kind.INCOMING: topics.incoming,
            Kind.WAITCALL: topics.waitcall,
        }
        self._dead_letter_topic = topics.dead_letter
        self._publisher = publisher
        self._dead_letters = Children(metrics.dead_letters)
        self._metrics = ingress_metrics
        # The children a published event updates, looked up once per kind.
        self._published = {kind: ingress_metrics.outcome(kind, "published") for kind in Kind}
        self._latency = {kind: ingress_metrics.latency(kind) for kind in Kind}
        self._health = health
        self._access = AccessPolicy(settings.allowed_networks, settings.path_token)
        self._clock = clock
        self._monotonic = monotonic
        self._timeout = SlottedTimeout(settings.publish_timeout_seconds)
        self._charset = canonical_charset(settings.default_charset) or DEFAULT_CHARSET
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def access(self) -> AccessPolicy:
        return self._access

    def refuse(self, refusal: Refusal, kind: str = "unknown") -> Answer:
        """Count a refusal (decided here, or outside: token, size) and give its answer."""
        self._metrics.outcome(kind, refusal).inc()
        return TOO_LARGE if refusal is Refusal.TOO_LARGE else FORBIDDEN

    def take(self, request: CallbackRequest, peer: str | None, reply: Reply) -> None:
        """Answer ``request`` through ``reply``: at once when it is refused, else once its
        event (or dead letter) is on Kafka, or the publish failed or timed out."""
        routed = None
        if self._access.peer_allowed(peer):
            received_at = self._clock()
            routed = usual_event(request, self._charset, self._settings.secret, received_at)
        if routed is None:
            self._spawn(self._answer(request, peer, reply))
        elif self._health.failing:
            self._metrics.outcome(routed.kind, "kafka_unavailable").inc()
            reply(UNAVAILABLE)
        else:
            pending = _Pending(self, routed.kind, reply)
            pending.waits = self._timeout.join(pending)
            topic = self._topics[routed.kind]
            self._publisher.offer(topic, routed.key, dumps(routed.event), pending.settle)

    async def handle(self, request: CallbackRequest, peer: str | None) -> Answer:
        """The answer for one callback, after its event (or dead letter) is on Kafka."""
        if not self._access.peer_allowed(peer):
            log.warning("callback refused: peer %s is not in allowed_networks", peer)
            return self.refuse(Refusal.NETWORK)
        parsed = parse_callback(request, self._settings.default_charset)
        params = parsed.params
        if params is not None:
            refused = self._check_signature(
                check_signature(params, self._settings.secret), params.kind, peer
            )
            if refused is not None:
                return refused
        if isinstance(parsed, Rejection):
            return await self._dead_letter(request, parsed)
        return await self._publish(parsed)

    async def drain(self) -> None:
        """Wait for the callbacks on the general path to be answered."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _answer(self, request: CallbackRequest, peer: str | None, reply: Reply) -> None:
        reply(await self.handle(request, peer))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _stored(self, kind: Kind, seconds: float) -> None:
        self._health.succeeded(self._monotonic())
        self._latency[kind].observe(seconds)
        self._published[kind].inc()

    def _not_stored(self, kind: str, problem: Exception) -> None:
        text = str(problem) or "publish timed out"
        self._metrics.outcome(kind, "kafka_unavailable").inc()
        if isinstance(problem, KafkaRecordRefusedError):  # this event only: Kafka is fine
            log.error("callback not stored, Kafka refuses its event for good: %s", text)
            return
        self._health.failed(text)
        log.warning("callback not stored, answering 503: %s", text)

    def _check_signature(
        self, check: SignatureCheck, kind: Kind, peer: str | None
    ) -> Answer | None:
        if check.verdict is Verdict.VALID:
            return None
        if check.verdict is Verdict.FORGED:
            algorithms = ",".join(check.algorithms)
            self._metrics.signature_failures.labels(algorithms, "mismatch").inc()
            log.warning(
                "callback refused: %s signature mismatch (%s, peer %s)", algorithms, kind, peer
            )
            return self.refuse(Refusal.SIGNATURE, kind)
        if self._settings.unsigned_policy == "reject":
            self._metrics.signature_failures.labels("none", "missing").inc()
            log.warning("callback refused: not signed (%s, peer %s)", kind, peer)
            return self.refuse(Refusal.UNSIGNED, kind)
        self._metrics.unsigned_accepted.labels(kind).inc()
        return None

    async def _publish(self, callback: Callback) -> Answer:
        routed = callback_event(callback, self._clock())
        kind: str = routed.kind  # a StrEnum: the label value itself, without Enum.value
        if self._health.failing:
            self._metrics.outcome(kind, "kafka_unavailable").inc()
            return UNAVAILABLE
        try:
            seconds = await self._send(self._topics[routed.kind], routed.key, dumps(routed.event))
        except (GatewayError, TimeoutError) as exc:
            self._not_stored(kind, exc)
            return UNAVAILABLE
        self._stored(routed.kind, seconds)
        return OK

    async def _dead_letter(self, request: CallbackRequest, rejection: Rejection) -> Answer:
        kind = rejection.params.kind.value if rejection.params else "unknown"
        event = dead_letter_event(
            role=ROLE,
            origin=Origin(kind="http", detail=_detail(request, kind)),
            reason_code=rejection.code,
            reason=rejection.message,
            key=None,
            value=request.body,
            occurred_at=self._clock(),
        )
        if self._health.failing:
            self._metrics.outcome(kind, "kafka_unavailable").inc()
            return UNAVAILABLE
        try:
            await self._send(self._dead_letter_topic, None, dumps(event))
        except (GatewayError, TimeoutError) as exc:
            self._not_stored(kind, exc)
            return UNAVAILABLE
        self._health.succeeded(self._monotonic())
        log.warning("callback dead-lettered: %s: %s (%s)", rejection.code, rejection.message, kind)
        self._dead_letters(rejection.code).inc()
        self._metrics.outcome(kind, "dead_lettered").inc()
        return answer(400, f"rejected: {rejection.code}: {rejection.message}")

    async def _send(self, topic: str, key: bytes | None, value: bytes) -> float:
        """Publish and wait for the acknowledgement, at most publish_timeout_seconds (plus
        at most the timeout's resolution, 50 ms: see ``deadline``); the seconds it took.

        A record abandoned at the timeout may still reach Kafka later; the provider's retry
        then stores it again, with the same event id. While Kafka is known to be failing
        nothing is handed to the producer (see ``health``): the callers check.
        """
        done: asyncio.Future[float] = asyncio.get_running_loop().create_future()

        def settle(problem: GatewayError | None, seconds: float) -> None:
            if done.done():
                return
            if problem is None:
                done.set_result(seconds)
            else:
                done.set_exception(problem)

        with self._timeout():
            self._publisher.offer(topic, key, value, settle)
            return await done


class _Pending:
    """A usual callback waiting for its publish: answered by whichever comes first, the
    publisher's settle or the slot timer's expire."""

    __slots__ = ("_handler", "_kind", "_reply", "done", "waits")

    def __init__(self, handler: CallbackHandler, kind: Kind, reply: Reply) -> None:
        self._handler = handler
        self._kind = kind
        self._reply = reply
        self.done = False
        self.waits: set[Expiring] = set()

    def settle(self, problem: GatewayError | None, seconds: float) -> None:
        if self.done:
            return
        self.done = True
        self.waits.discard(self)
        if problem is None:
            self._handler._stored(self._kind, seconds)
            self._reply(OK)
        else:
            self._handler._not_stored(self._kind, problem)
            self._reply(UNAVAILABLE)

    def expire(self) -> None:
        if self.done:
            return
        self.done = True
        self._handler._not_stored(self._kind, TimeoutError("publish timed out"))
        self._reply(UNAVAILABLE)


def _detail(request: CallbackRequest, kind: str) -> str:
    """Where a dead letter came from: the kind, content type and the GET parameters (the
    path is left out: it may hold the secret path token)."""
    query = request.query.decode("latin-1")
    text = f"webhook {kind}; content-type={request.content_type!r}; query={query!r}"
    return text[:_DETAIL_LIMIT]
