"""The composite alarm rule parser and evaluator."""

from __future__ import annotations

import pytest

from llmmon_shared.alarm_rules import RuleError, evaluate, parse, referenced_alarms


def test_precedence__not_then_and_then_or() -> None:
    rule = 'ALARM("a") OR ALARM("b") AND NOT OK("c")'
    assert evaluate(rule, {"a": "OK", "b": "ALARM", "c": "ALARM"})
    assert not evaluate(rule, {"a": "OK", "b": "ALARM", "c": "OK"})
    assert evaluate(rule, {"a": "ALARM", "b": "OK", "c": "OK"})


def test_parentheses_change_grouping() -> None:
    rule = '(ALARM("a") OR ALARM("b")) AND NOT OK("c")'
    assert not evaluate(rule, {"a": "ALARM", "b": "OK", "c": "OK"})
    assert evaluate(rule, {"a": "ALARM", "b": "OK", "c": "INSUFFICIENT_DATA"})


def test_states_constants_bare_names_and_arns() -> None:
    assert evaluate("TRUE", {}) and not evaluate("FALSE", {})
    assert evaluate("INSUFFICIENT_DATA(missing)", {})
    arn = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:my-alarm"
    assert evaluate(f"ALARM({arn})", {"my-alarm": "ALARM"})
    assert referenced_alarms(f'ALARM({arn}) AND OK("x y")') == {"my-alarm", "x y"}


@pytest.mark.parametrize(
    "rule",
    [
        "",
        "ALARM(a",
        "ALARM(a) OR",
        "ALARM a",
        "a AND b",
        "ALARM(a) ALARM(b)",
        "alarm(a)",
        "ALARM(a)) ",
        "NOT",
        "x" * 10_241,
    ],
)
def test_invalid_rules__raise(rule: str) -> None:
    with pytest.raises(RuleError):
        parse(rule)
