"""``llmmon build``: one artefact from the locked dependencies, its handler imported and run from
the unpacked zip (with only what the Lambda runtime adds: boto3 and its dependencies)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import boto3
import botocore
import pytest

from llmmon.build import LAMBDA_UNZIPPED_LIMIT, RUNTIME_PROVIDED, build_service
from llmmon_shared.spec import discover

SCRIPT = """
import json, sys
from llmmon_comprehend.handler import lambda_handler
event = {"Records": [{"messageId": "m1", "receiptHandle": "h", "eventSource": "aws:sqs",
          "body": json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"}),
          "attributes": {}, "messageAttributes": {}, "md5OfBody": "", "awsRegion": "us-east-1",
          "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q"}]}
print(json.dumps(lambda_handler(event, None)))
import llmmon_comprehend, pydantic_core
assert llmmon_comprehend.__file__.startswith(sys.argv[1]), llmmon_comprehend.__file__
assert pydantic_core.__file__.startswith(sys.argv[1]), pydantic_core.__file__
"""


def lambda_runtime_packages(target: Path) -> Path:
    """A folder with just the packages the Lambda Python runtime provides (boto3 & co)."""
    target.mkdir()
    site = Path(botocore.__file__).parents[1]
    for package in ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six.py", "urllib3"):
        (target / package).symlink_to(site / package)
    return target


def test_artefact__builds_and_its_handler_runs_from_the_unpacked_zip(tmp_path: Path) -> None:
    spec = discover()["comprehend"]
    artefact = build_service(spec, tmp_path / "build", local=False)
    assert artefact.runtime == "python3.11"
    assert artefact.unzipped_bytes < LAMBDA_UNZIPPED_LIMIT
    manifest = json.loads((tmp_path / "build" / "comprehend.json").read_text())
    assert manifest["runtime"] == "python3.11" and manifest["architecture"] == "x86_64"
    # Bytecode for the runtime's Python: Lambda's code folder is read-only, so without it every
    # cold start compiles every module (this machine has a Python 3.11: the suite runs on one).
    assert manifest["bytecode"] is True
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(artefact.zip_path) as archive:
        names = archive.namelist()
        archive.extractall(unpacked)
    assert "llmmon_comprehend/handler.py" in names
    assert "llmmon_shared/runtime.py" in names
    assert "llmmon_shared/__pycache__/runtime.cpython-311.pyc" in names
    assert "pydantic/__pycache__/main.cpython-311.pyc" in names
    assert not any(n.split("/")[0] in RUNTIME_PROVIDED | {"boto3", "botocore"} for n in names)
    runtime = lambda_runtime_packages(tmp_path / "runtime")
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": f"{unpacked}:{runtime}",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "LLMMON_COMPREHEND_BACKEND": "comprehend",
        "HOME": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-S", "-c", SCRIPT, str(unpacked)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"batchItemFailures": []}


def test_artefact__is_reproducible(tmp_path: Path) -> None:
    spec = discover()["similarity"]
    first = build_service(spec, tmp_path / "a", local=False)
    second = build_service(spec, tmp_path / "b", local=False)
    assert first.zip_path.read_bytes() == second.zip_path.read_bytes()


@pytest.mark.parametrize("service", ["similarity", "refusal", "comprehend", "traffic"])
def test_boto3_is_not_bundled(service: str, tmp_path: Path) -> None:
    """(The traffic service has no local backend: a local build exports its plain
    requirements.)"""
    from llmmon.build import _requirements, repo_root

    names = {
        line.split("==")[0].lower()
        for line in _requirements(repo_root(Path(__file__)), discover()[service], local=True)
    }
    assert not names & RUNTIME_PROVIDED
    assert boto3.__name__ not in names


def test_a_service_that_does_not_embed_ships_without_numpy() -> None:
    """numpy comes with the shared package's ``vectors`` extra, which only the services that
    embed name: the traffic service's zip is Powertools, pydantic and our code."""
    from llmmon.build import _requirements, repo_root

    root = repo_root(Path(__file__))
    names = {
        service: {line.split("==")[0].lower() for line in _requirements(root, spec, local=True)}
        for service, spec in discover().items()
    }
    assert "numpy" not in names["traffic"]
    assert "aws-lambda-powertools" in names["traffic"]
    assert {"numpy"} <= names["similarity"] & names["refusal"] & names["comprehend"]
