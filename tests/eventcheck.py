"""Validation of events against the JSON Schemas shipped in ``gateway/events/schemas``."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

SCHEMA_FILES = {
    "smsc.send-request/1": "send-request.v1.json",
    "smsc.send-result/1": "send-result.v1.json",
    "smsc.dlr/1": "dlr.v1.json",
    "smsc.incoming/1": "incoming.v1.json",
    "smsc.dead-letter/1": "dead-letter.v1.json",
    "smsc.status/1": "status.v1.json",
    "smsc.waitcall/1": "waitcall.v1.json",
    "smsc.poll-cursor/1": "poll-cursor.v1.json",
    "smsc.call-confirm/1": "call-confirm.v1.json",
    "smsc.opt-out/1": "opt-out.v1.json",
}


@cache
def _registry() -> Registry[Any]:
    folder = resources.files("gateway.events") / "schemas"
    resources_by_uri = []
    for entry in folder.iterdir():
        if entry.name.endswith(".json"):
            document = json.loads(entry.read_text())
            resources_by_uri.append((document["$id"], Resource.from_contents(document)))
            resources_by_uri.append((entry.name, Resource.from_contents(document)))
    return Registry().with_resources(resources_by_uri)


@cache
def validator(schema_name: str) -> Draft202012Validator:
    document = _registry().contents(SCHEMA_FILES[schema_name])
    Draft202012Validator.check_schema(document)
    return Draft202012Validator(document, registry=_registry(), format_checker=FormatChecker())


def validate_event(event: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``event`` matches the schema it names."""
    validator(event["schema"]).validate(event)


def is_valid(event: dict[str, Any], schema_name: str) -> bool:
    return validator(schema_name).is_valid(event)
