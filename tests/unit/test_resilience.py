"""Backend wrappers: retry at the backend interface, injected throttling."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from llmmon_shared.resilience import InjectedThrottling, Retrying, harden
from llmmon_shared.settings import ServiceSettings


class Counter:
    name = "counter"

    def __init__(self) -> None:
        self.calls = 0

    def score(self, texts: list[str]) -> list[int]:
        self.calls += 1
        return [len(t) for t in texts]


def test_injected_throttling__raises_a_real_throttling_error_at_the_rate() -> None:
    throttled = InjectedThrottling(Counter(), rate=0.3, seed=1)
    codes = []
    for _ in range(2000):
        try:
            throttled.score(["a"])
        except ClientError as exc:
            codes.append(exc.response["Error"]["Code"])
    failures = len(codes)
    assert set(codes) == {"ThrottlingException"}
    assert 500 < failures < 700
    assert throttled.name == "counter"  # attributes pass through


def test_retrying__absorbs_throttling() -> None:
    backend = Counter()
    wrapped = Retrying(InjectedThrottling(backend, rate=0.3, seed=2), sleep=lambda _: None)
    assert all(wrapped.score(["abc"]) == [3] for _ in range(500))
    assert backend.calls == 500


def test_retrying__does_not_retry_other_errors() -> None:
    class Broken:
        def score(self) -> None:
            raise ValueError("bug")

    with pytest.raises(ValueError, match="bug"):
        Retrying(Broken(), sleep=lambda _: None).score()


def test_harden__injects_only_when_configured() -> None:
    plain = harden(Counter(), ServiceSettings())
    assert plain.score(["x"]) == [1]
    assert not isinstance(plain._target, InjectedThrottling)  # type: ignore[attr-defined]
    faulty = harden(Counter(), ServiceSettings(fault_throttle_rate=0.5))
    assert isinstance(faulty._target, InjectedThrottling)  # type: ignore[attr-defined]
