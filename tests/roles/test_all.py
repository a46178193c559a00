"""Which roles ``smsc-gateway all`` runs, and the readiness they share."""

from __future__ import annotations

import dataclasses

import httpx

from gateway.metrics import Metrics
from gateway.roles.all import roles_to_run
from gateway.roles.probes import ProbeServer, Readiness
from gateway.settings import Settings


def test_sender_and_correlator_always_ingress_and_poller_when_configured() -> None:
    base = Settings()
    assert list(roles_to_run(base, Metrics(), Readiness())) == ["sender", "correlator"]
    configured = dataclasses.replace(
        base,
        ingress=dataclasses.replace(base.ingress, secret="s3cret"),
        http_api=dataclasses.replace(base.http_api, login="shop", password="pw"),
    )
    assert list(roles_to_run(configured, Metrics(), Readiness())) == [
        "sender",
        "correlator",
        "ingress",
        "poller",
    ]
    unsigned = dataclasses.replace(
        base, ingress=dataclasses.replace(base.ingress, unsigned_policy="accept")
    )
    assert "ingress" in roles_to_run(unsigned, Metrics(), Readiness())


def test_readiness_is_every_roles() -> None:
    readiness = Readiness()
    assert readiness() == (False, "no role running")
    readiness.add("sender", lambda: (True, "1 of 1 bound"))
    readiness.add("correlator", lambda: (False, "recovering tables"))
    assert readiness() == (False, "sender: 1 of 1 bound; correlator: recovering tables")
    readiness.remove("correlator")
    assert readiness() == (True, "sender: 1 of 1 bound")


async def test_each_role_of_the_process_has_its_own_readiness() -> None:
    readiness = Readiness()
    readiness.add("sender", lambda: (True, "1 of 1 bound"))
    readiness.add("correlator", lambda: (False, "recovering tables"))
    probes = ProbeServer("127.0.0.1", 0, Metrics(), readiness)
    await probes.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{probes.port}") as client:
            answers = {
                path: (await client.get(path)).status_code
                for path in ("/readyz", "/readyz/sender", "/readyz/correlator", "/readyz/poller")
            }
            body = (await client.get("/readyz")).text
    finally:
        await probes.stop()
    assert answers == {
        "/readyz": 503,
        "/readyz/sender": 200,
        "/readyz/correlator": 503,
        "/readyz/poller": 404,
    }
    assert body == "sender: 1 of 1 bound; correlator: recovering tables\n"
