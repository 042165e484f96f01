"""Backend wrappers: retry with backoff at the backend interface, and injected throttling for
fault-injection tests.

``harden(backend, settings)`` is what every service does with its backends: calls are retried on
throttling and transient errors (``call_with_backoff``); with ``LLMMON_FAULT_THROTTLE_RATE`` set
(tests only), that share of calls first fails with a real botocore ``ThrottlingException``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, TypeVar, cast

from llmmon_shared.aws import call_with_backoff
from llmmon_shared.settings import ServiceSettings

__all__ = ["InjectedThrottling", "Retrying", "harden"]

T = TypeVar("T")


class _Proxy:
    """Forwards attribute access to ``target``; subclasses wrap its methods."""

    def __init__(self, target: Any) -> None:
        self._target = target

    def _wrap(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        raise NotImplementedError

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if callable(attribute) and not name.startswith("_"):
            return self._wrap(name, attribute)
        return attribute


class Retrying(_Proxy):
    def __init__(
        self,
        target: Any,
        attempts: int = 8,
        base_delay: float = 0.05,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__(target)
        self._attempts, self._base_delay, self._sleep = attempts, base_delay, sleep

    def _wrap(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if self._sleep is None:
                return call_with_backoff(
                    lambda: method(*args, **kwargs),
                    attempts=self._attempts,
                    base_delay=self._base_delay,
                )
            return call_with_backoff(
                lambda: method(*args, **kwargs),
                attempts=self._attempts,
                base_delay=self._base_delay,
                sleep=self._sleep,
            )

        return call


class InjectedThrottling(_Proxy):
    def __init__(self, target: Any, rate: float, seed: int | None = None) -> None:
        super().__init__(target)
        self._rate = rate
        self._rng = random.Random(seed)
        self.injected = 0

    def _wrap(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if self._rng.random() < self._rate:
                from botocore.exceptions import ClientError

                self.injected += 1
                raise ClientError(
                    {
                        "Error": {
                            "Code": "ThrottlingException",
                            "Message": "Rate exceeded (injected)",
                        }
                    },
                    name,
                )
            return method(*args, **kwargs)

        return call


def harden(backend: T, settings: ServiceSettings) -> T:
    """The backend as services use it: retried on throttling; throttled on purpose in tests."""
    target: Any = backend
    if settings.fault_throttle_rate > 0:
        target = InjectedThrottling(target, settings.fault_throttle_rate)
    return cast(T, Retrying(target))
