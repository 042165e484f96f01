"""Pure scoring for the attacks service.

One record in, its metric values out: no I/O, no AWS client, no logging of text (prompts and
answers are user data)."""

from __future__ import annotations

from collections.abc import Sequence

from llmmon_shared.extract import Interaction
from llmmon_shared.runtime import Scores


def scores(interaction: Interaction) -> Scores:
    words = len(interaction.completion.split())
    return {"AttacksEmptyAnswer": float(words == 0), "AttacksAnswerWords": float(words)}


def score_batch(batch: Sequence[Interaction]) -> list[Scores]:
    """The pipeline hands records in batches (a model may score a batch at once)."""
    return [scores(item) for item in batch]
