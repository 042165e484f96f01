"""CloudWatch composite alarm rules: parse, list the alarms they name, evaluate.

Grammar (CloudWatch's ``AlarmRule``)::

    expr    := term ("OR" term)*
    term    := factor ("AND" factor)*
    factor  := "NOT" factor | "(" expr ")" | "TRUE" | "FALSE" | STATE "(" NAME ")"
    STATE   := ALARM | OK | INSUFFICIENT_DATA
    NAME    := an alarm name or ARN, quoted ("...") or bare

Keywords are upper case; NOT binds tighter than AND, AND tighter than OR.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["RuleError", "evaluate", "parse", "referenced_alarms"]

STATES = ("ALARM", "OK", "INSUFFICIENT_DATA")
MAX_RULE_CHARS = 10_240

_TOKEN = re.compile(
    r'\s*(?:(?P<lparen>\()|(?P<rparen>\))|(?P<quoted>"(?:[^"\\]|\\.)*")'
    r"|(?P<word>[A-Za-z0-9_:./+=@,\-]+))"
)


class RuleError(ValueError):
    """The rule is not a valid composite alarm rule."""


@dataclass(frozen=True)
class Const:
    value: bool


@dataclass(frozen=True)
class State:
    state: str
    alarm: str


@dataclass(frozen=True)
class Not:
    operand: Node


@dataclass(frozen=True)
class BinOp:
    op: str
    left: Node
    right: Node


Node = Const | State | Not | BinOp


def _tokens(rule: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    rule = rule.rstrip()
    while position < len(rule):
        match = _TOKEN.match(rule, position)
        if not match or match.end() == position:
            raise RuleError(f"unexpected character at {position}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, rule: str) -> None:
        if len(rule) > MAX_RULE_CHARS:
            raise RuleError(f"rule longer than {MAX_RULE_CHARS} characters")
        self.tokens = _tokens(rule)
        self.index = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, kind: str | None = None, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise RuleError("rule ends too early")
        if (kind and token[0] != kind) or (value and token[1] != value):
            raise RuleError(f"unexpected {token[1]!r}")
        self.index += 1
        return token

    def expr(self) -> Node:
        node = self.term()
        while self.peek() == ("word", "OR"):
            self.take()
            node = BinOp("OR", node, self.term())
        return node

    def term(self) -> Node:
        node = self.factor()
        while self.peek() == ("word", "AND"):
            self.take()
            node = BinOp("AND", node, self.factor())
        return node

    def factor(self) -> Node:
        kind, value = self.take()
        if kind == "lparen":
            node = self.expr()
            self.take("rparen")
            return node
        if kind != "word":
            raise RuleError(f"unexpected {value!r}")
        if value == "NOT":
            return Not(self.factor())
        if value in ("TRUE", "FALSE"):
            return Const(value == "TRUE")
        if value in STATES:
            self.take("lparen")
            name_kind, name = self.take()
            if name_kind == "quoted":
                name = name[1:-1].replace('\\"', '"')
            elif name_kind != "word":
                raise RuleError("expected an alarm name")
            self.take("rparen")
            return State(value, name)
        raise RuleError(f"unexpected {value!r}")


def parse(rule: str) -> Node:
    parser = _Parser(rule)
    node = parser.expr()
    if parser.peek() is not None:
        raise RuleError(f"unexpected {parser.peek()[1]!r}")  # type: ignore[index]
    return node


def referenced_alarms(rule: str | Node) -> set[str]:
    node = parse(rule) if isinstance(rule, str) else rule
    if isinstance(node, State):
        return {_alarm_name(node.alarm)}
    if isinstance(node, Not):
        return referenced_alarms(node.operand)
    if isinstance(node, BinOp):
        return referenced_alarms(node.left) | referenced_alarms(node.right)
    return set()


def _alarm_name(reference: str) -> str:
    """``arn:aws:cloudwatch:region:account:alarm:NAME`` or ``NAME`` -> ``NAME``."""
    return reference.split(":alarm:", 1)[1] if ":alarm:" in reference else reference


def evaluate(rule: str | Node, states: Mapping[str, str]) -> bool:
    """Whether the rule is true given each alarm's state (unknown alarms count as
    INSUFFICIENT_DATA)."""
    node = parse(rule) if isinstance(rule, str) else rule
    if isinstance(node, Const):
        return node.value
    if isinstance(node, State):
        return states.get(_alarm_name(node.alarm), "INSUFFICIENT_DATA") == node.state
    if isinstance(node, Not):
        return not evaluate(node.operand, states)
    if node.op == "AND":
        return evaluate(node.left, states) and evaluate(node.right, states)
    return evaluate(node.left, states) or evaluate(node.right, states)
