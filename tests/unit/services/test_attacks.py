"""The attacks service's scorer, on typed records (no I/O)."""

from __future__ import annotations

from llmmon_attacks.compute import score_batch
from llmmon_attacks.spec import SERVICE
from llmmon_shared.extract import Interaction


def interaction(answer: str) -> Interaction:
    return Interaction(
        request_id="r-1",
        model_id="amazon.titan-text-express-v1",
        operation="InvokeModel",
        family="titan",
        prompt="Where is Paris?",
        completion=answer,
    )


def test_an_empty_answer_counts_and_a_real_one_does_not() -> None:
    empty, real = score_batch([interaction("  "), interaction("In France, on the Seine.")])
    assert empty == {"AttacksEmptyAnswer": 1.0, "AttacksAnswerWords": 0.0}
    assert real == {"AttacksEmptyAnswer": 0.0, "AttacksAnswerWords": 5.0}


def test_every_value_is_a_declared_metric() -> None:
    declared = {metric.name for metric in SERVICE.metrics}
    for values in score_batch([interaction(""), interaction("Yes.")]):
        assert set(values) <= declared
