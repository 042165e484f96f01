"""Small helpers for calling AWS APIs: retry with backoff on throttling, client construction."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = [
    "BOUNDED_TIERS",
    "RETRYABLE_CODES",
    "NoTimeLeft",
    "TimeBoundClient",
    "call_with_backoff",
    "client",
]

T = TypeVar("T")

RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "ServiceUnavailableException",
        "InternalServerException",
        "InternalServerError",
        "ModelNotReadyException",
    }
)


def error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return code if isinstance(code, str) else None
    return None


def call_with_backoff(
    call: Callable[[], T],
    *,
    attempts: int = 6,
    base_delay: float = 0.2,
    max_delay: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``call``; on a throttling or transient error, wait (full jitter) and try again."""
    for attempt in range(attempts):
        try:
            return call()
        except Exception as exc:
            if error_code(exc) not in RETRYABLE_CODES or attempt == attempts - 1:
                raise
            sleep(random.uniform(0, min(max_delay, base_delay * 2**attempt)))
    raise AssertionError("unreachable")


def client(
    service: str,
    *,
    connect_timeout: float = 5,
    read_timeout: float = 60,
    max_attempts: int = 8,
    **kwargs: Any,
) -> Any:
    """A boto3 client with botocore's adaptive retries (honours ``AWS_ENDPOINT_URL``)."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "adaptive", "max_attempts": max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )
    return boto3.client(service, config=config, **kwargs)


BOUNDED_TIERS: tuple[tuple[float, float, int], ...] = (
    (1.0, 2.0, 3),
    (1.0, 2.0, 2),
    (0.5, 1.5, 1),
    (0.25, 0.75, 1),
    (0.1, 0.4, 1),
)
"""(connect timeout, read timeout, attempts) a :class:`TimeBoundClient` picks from, widest first.
DynamoDB answers in milliseconds; 2 s without a byte is an endpoint that went silent."""


def worst_case_s(connect: float, read: float, attempts: int) -> float:
    """The longest a call with these settings can take: every attempt waiting out both timeouts,
    plus botocore's standard-mode backoff between attempts (at most 1 s, then 2 s, ...)."""
    return attempts * (connect + read) + sum(2.0**n for n in range(attempts - 1))


class NoTimeLeft(TimeoutError):
    """Too little time is left before the invocation's deadline to make the call safely."""


class TimeBoundClient:
    """A boto3 client whose every call ends before a deadline. Each call goes to a client whose
    timeouts and attempts (:data:`BOUNDED_TIERS`) add up to less than the time left, as
    ``seconds_left()`` tells it (None: no deadline), minus a reserve for what must still run
    after it (``reserve_s``, or a quarter of the time left when that is less); with less than
    the narrowest tier needs, the call is refused at once (:class:`NoTimeLeft`). So a write
    that guards exactly-once, against an endpoint that accepts connections and never answers,
    returns or fails while the function can still act on it.

    Anything that is not an API call (``meta``, ``exceptions``) is the widest client's."""

    def __init__(
        self,
        service: str,
        seconds_left: Callable[[], float | None],
        *,
        reserve_s: float = 2.0,
        tiers: tuple[tuple[float, float, int], ...] = BOUNDED_TIERS,
    ) -> None:
        self._service, self._seconds_left, self._reserve = service, seconds_left, reserve_s
        self._tiers = tiers
        self._clients: dict[tuple[float, float, int], Any] = {}

    def _client(self, tier: tuple[float, float, int]) -> Any:
        if tier not in self._clients:
            import boto3
            from botocore.config import Config

            connect, read, attempts = tier
            config = Config(
                retries={"mode": "standard", "total_max_attempts": attempts},
                connect_timeout=connect,
                read_timeout=read,
            )
            self._clients[tier] = boto3.client(self._service, config=config)
        return self._clients[tier]

    def tier(self) -> tuple[float, float, int]:
        """The widest tier that fits the time left; :class:`NoTimeLeft` when none does."""
        left = self._seconds_left()
        if left is None:
            return self._tiers[0]
        budget = left - min(self._reserve, left / 4)
        for tier in self._tiers:
            if worst_case_s(*tier) <= budget:
                return tier
        raise NoTimeLeft(f"{max(0.0, left):.1f} s left: too little for a {self._service} call")

    def __getattr__(self, name: str) -> Any:
        widest = self._client(self._tiers[0])
        attribute = getattr(widest, name)
        if name not in widest.meta.method_to_api_mapping:
            return attribute

        def call(**kwargs: Any) -> Any:
            return getattr(self._client(self.tier()), name)(**kwargs)

        return call
