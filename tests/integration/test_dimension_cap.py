"""One dimension cap for the deployment: containers scoring at once, each with its own cache,
admit at most the cap's values of a key between them, and map each value the same way."""

from __future__ import annotations

import multiprocessing
import os
import random
from collections.abc import Iterator
from typing import Any

import pytest

pytestmark = pytest.mark.integration

CAP, VALUES, WORKERS = 20, 60, 3
TABLE = "llmmon-cap-idempotency"


def _container(endpoint: str, seed: int, start: Any) -> dict[str, str]:
    """One container: its own clients and cache, the values in its own order."""
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="x",
        AWS_SECRET_ACCESS_KEY="x",
    )
    from llmmon_shared.metrics import MemorySink
    from llmmon_shared.runtime import Pipeline
    from llmmon_shared.settings import ServiceSettings
    from tests.conftest import DictS3Reader

    pipeline = Pipeline(
        f"service{seed}",
        lambda batch: [],
        {},
        DictS3Reader({}),
        MemorySink(),
        ServiceSettings(
            idempotency_table=TABLE, metadata_dimensions=["app~[a-z0-9-]+"], metadata_max_values=CAP
        ),
    )
    assert pipeline.policy is not None
    values = [f"app-{n}" for n in range(VALUES)]
    random.Random(seed).shuffle(values)
    start.wait()
    seen: dict[str, str] = {}
    for _ in range(2):  # every value twice: the second time from the container's cache
        for value in values:
            seen[value] = dict(pipeline.policy.dimensions("m", {"app": value}))["app"]
    return seen


@pytest.fixture
def endpoint() -> Iterator[str]:
    import boto3

    from tests.conftest import threaded_moto

    with threaded_moto() as url:
        boto3.client(
            "dynamodb",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
        ).create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        )
        yield url


def test_three_containers_at_once__one_cap_and_one_series_per_value(endpoint: str) -> None:
    spawn = multiprocessing.get_context("spawn")
    with spawn.Manager() as manager:
        start = manager.Barrier(WORKERS)
        with spawn.Pool(WORKERS) as pool:
            seen = pool.starmap(_container, [(endpoint, seed, start) for seed in range(WORKERS)])
    admitted = {v for mapping in seen for v, dim in mapping.items() if dim != "Other"}
    assert len(admitted) == CAP  # not 20 per container (60 before)
    for value in (f"app-{n}" for n in range(VALUES)):
        assert len({mapping[value] for mapping in seen}) == 1, value  # same series everywhere
        assert seen[0][value] in (value, "Other")
