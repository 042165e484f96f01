"""Small helpers for calling AWS APIs: retry with backoff on throttling, client construction."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["RETRYABLE_CODES", "call_with_backoff", "client"]

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
