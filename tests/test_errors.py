"""The gateway's error tree: every error it raises is a GatewayError, and a lost link is one class.

Every module of the package is imported and every exception class it defines is checked.
Classes whose names start with an underscore are a module's own control flow: each is caught
and translated inside the module that raises it, so callers never see one.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import gateway
from gateway.errors import GatewayError, KafkaUnavailableError, TransportError
from gateway.http_api.errors import HttpTransportError
from gateway.smpp.errors import ConnectionClosedError


def _exception_classes() -> list[type[BaseException]]:
    found: list[type[BaseException]] = []
    for module_info in pkgutil.walk_packages(gateway.__path__, "gateway."):
        if module_info.name.rpartition(".")[2] == "__main__":
            continue  # running it is its only purpose
        module = importlib.import_module(module_info.name)
        found += [
            cls
            for _, cls in inspect.getmembers(module, inspect.isclass)
            if issubclass(cls, BaseException) and cls.__module__ == module.__name__
        ]
    return found


EXCEPTIONS = _exception_classes()


def test_the_package_defines_errors() -> None:
    names = {cls.__name__ for cls in EXCEPTIONS}
    assert {"EncodingError", "ConcatError", "PartRecordError", "AbandonedError"} <= names


@pytest.mark.parametrize(
    "cls",
    [cls for cls in EXCEPTIONS if not cls.__name__.startswith("_")],
    ids=lambda cls: f"{cls.__module__}.{cls.__qualname__}",
)
def test_every_public_error_is_in_the_tree(cls: type[BaseException]) -> None:
    assert issubclass(cls, GatewayError)
    assert isinstance(cls.retriable, bool)


@pytest.mark.parametrize("cls", [ConnectionClosedError, HttpTransportError, KafkaUnavailableError])
def test_any_lost_link_is_a_retriable_transport_error(cls: type[TransportError]) -> None:
    assert issubclass(cls, TransportError)
    assert cls.retriable
