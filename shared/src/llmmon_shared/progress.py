"""How far scoring of one object version got: the position after the last chunk whose metrics
went out, and the chunk being delivered, if any. A message that fails midway (a backend down,
the deadline, a crash) resumes there on its retry instead of scoring, and counting, the first
chunks again.

A chunk is announced (``pending``) before its metrics are sent and confirmed after: a retry that
finds a chunk still announced cannot know whether its metrics went out, so it never sends them
again and counts its records as ``UnconfirmedRecords`` instead. No chunk is sent without a saved
announcement, so no crash, timeout or lost write can make a retry count a chunk twice."""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["Checkpoint", "DynamoProgress", "MemoryProgress", "ProgressStore"]


@dataclass(frozen=True, slots=True)
class Checkpoint:
    position: int = 0
    """Items of the object (records and bad lines, in order) read and accounted for."""
    done: bool = False
    """Every metric of the object went out."""
    pending: int = 0
    """End position of the chunk announced for delivery and not yet confirmed (0: none)."""
    pending_last: bool = False
    """The announced chunk is the object's last."""
    owner: int = 0
    """Start position of the message that owns the object's scoring: 0 for its S3 event, ``P``
    once a receive handed the rest over to a continuation message starting at ``P``. A message
    whose start is below the owner's does not score (the object went on without it)."""

    @property
    def unconfirmed(self) -> int:
        """Items of the announced chunk: sent or not, they are never sent again."""
        return max(0, self.pending - self.position)


class ProgressStore(Protocol):
    def load(self, version: str) -> Checkpoint: ...

    def save(self, version: str, checkpoint: Checkpoint) -> None: ...


@dataclass
class MemoryProgress:
    """Per container, for runs without an idempotency table: resumes an object this container
    left midway. A finished object is forgotten (without the table nothing stops a redelivery)."""

    max_entries: int = 1024
    _entries: OrderedDict[str, Checkpoint] = field(default_factory=OrderedDict)

    def load(self, version: str) -> Checkpoint:
        return self._entries.get(version, Checkpoint())

    def save(self, version: str, checkpoint: Checkpoint) -> None:
        if checkpoint.done:
            self._entries.pop(version, None)
            return
        self._entries[version] = checkpoint
        self._entries.move_to_end(version)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


@dataclass
class DynamoProgress:
    """Checkpoints in the idempotency table, keyed ``<service>#progress#<hash>`` (inside the
    service's ``dynamodb:LeadingKeys``), expiring with the idempotency records."""

    client: Any
    table: str
    service: str
    ttl_s: int

    def _key(self, version: str) -> dict[str, Any]:
        digest = hashlib.sha256(version.encode("utf-8", "surrogatepass")).hexdigest()
        return {"id": {"S": f"{self.service}#progress#{digest}"}}

    def load(self, version: str) -> Checkpoint:
        item = self.client.get_item(
            TableName=self.table, Key=self._key(version), ConsistentRead=True
        ).get("Item")
        if not item:
            return Checkpoint()
        return Checkpoint(
            int(item["position"]["N"]),
            bool(item.get("done", {}).get("BOOL")),
            int(item.get("pending", {}).get("N", 0)),
            bool(item.get("pending_last", {}).get("BOOL")),
            int(item.get("owner", {}).get("N", 0)),
        )

    def save(self, version: str, checkpoint: Checkpoint) -> None:
        self.client.put_item(
            TableName=self.table,
            Item={
                **self._key(version),
                "position": {"N": str(checkpoint.position)},
                "done": {"BOOL": checkpoint.done},
                "pending": {"N": str(checkpoint.pending)},
                "pending_last": {"BOOL": checkpoint.pending_last},
                "owner": {"N": str(checkpoint.owner)},
                "expiration": {"N": str(int(time.time()) + self.ttl_s)},
            },
        )
