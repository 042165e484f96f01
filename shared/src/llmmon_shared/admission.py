"""Which values of a metadata key become dimension values: one cap for the whole deployment.

Every distinct dimension value is a custom metric per metric name, billed by CloudWatch, so
``LLMMON_METADATA_MAX_VALUES`` bounds the bill only if it is one cap for every container of every
service. :class:`DynamoAdmission` keeps the admitted values of each key in one item of the
idempotency table (``dimensions#<key>``), grown by a conditional update, so a value is admitted,
or refused as ``Other``, the same way wherever it is scored, however many containers score at
once. Each container caches what it learnt: an admitted value costs one call the first time the
container sees it, and once the key is full no call is made at all. Admitted values stay admitted
(delete the item to start the key afresh). :class:`LocalAdmission` is the same rule in one
process, for runs without a table (``llmmon score``, tests).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["ADMISSION_KEY_PREFIX", "Admission", "DynamoAdmission", "LocalAdmission"]

ADMISSION_KEY_PREFIX = "dimensions#"
"""Leading key of the admission items: every service's role may write them (they are shared)."""


class Admission(Protocol):
    def admit(self, key: str, value: str, cap: int) -> bool:
        """Whether ``value`` is (or now becomes) one of at most ``cap`` admitted values of
        ``key``. Raises when that cannot be known (the table is unreachable): the message is
        retried rather than the value landing in a series another container would not use."""
        ...


@dataclass
class LocalAdmission:
    """The cap in this process only."""

    _admitted: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def admit(self, key: str, value: str, cap: int) -> bool:
        admitted = self._admitted[key]
        if value in admitted:
            return True
        if len(admitted) >= cap:
            return False
        admitted.add(value)
        return True


@dataclass
class DynamoAdmission:
    """The cap for the deployment, in the idempotency table (see the module's docstring)."""

    client: Any
    table: str
    _admitted: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    _full: set[str] = field(default_factory=set)
    calls: int = 0

    def admit(self, key: str, value: str, cap: int) -> bool:
        admitted = self._admitted[key]
        if value in admitted:
            return True
        if key in self._full and len(admitted) >= cap:
            return False
        self.calls += 1
        try:
            answer = self.client.update_item(
                TableName=self.table,
                Key={"id": {"S": ADMISSION_KEY_PREFIX + key}},
                UpdateExpression="ADD #admitted :value",
                ConditionExpression=(
                    "attribute_not_exists(#admitted) OR size(#admitted) < :cap "
                    "OR contains(#admitted, :one)"
                ),
                ExpressionAttributeNames={"#admitted": "admitted"},
                ExpressionAttributeValues={
                    ":value": {"SS": [value]},
                    ":one": {"S": value},
                    ":cap": {"N": str(cap)},
                },
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except Exception as exc:
            from llmmon_shared.aws import error_code

            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            item = getattr(exc, "response", {}).get("Item", {})
            admitted.update(item.get("admitted", {}).get("SS", []))
            self._full.add(key)
            return value in admitted
        admitted.update(answer.get("Attributes", {}).get("admitted", {}).get("SS", [value]))
        return True
