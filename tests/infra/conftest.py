"""Run the Pulumi program under Pulumi's own unit-test mocks and record every resource."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pytest

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources.append(args)
        outputs = dict(args.inputs)
        name = outputs.get("name") or args.name
        kind = args.typ
        if kind == "aws:sqs/queue:Queue":
            outputs["arn"] = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}"
            outputs["url"] = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT_ID}/{name}"
        elif kind == "aws:sns/topic:Topic":
            outputs["arn"] = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:{name}"
        elif kind == "aws:s3/bucket:Bucket":
            outputs["bucket"] = f"{outputs.get('bucketPrefix', 'bucket-')}abc123"
            outputs["arn"] = f"arn:aws:s3:::{outputs['bucket']}"
        elif kind == "aws:cloudwatch/logGroup:LogGroup":
            outputs["arn"] = f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{name}"
        elif kind == "aws:kms/key:Key":
            outputs["arn"] = f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/{args.name}"
        elif kind == "aws:dynamodb/table:Table":
            outputs["arn"] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{name}"
        elif kind == "aws:iam/role:Role":
            outputs["arn"] = f"arn:aws:iam::{ACCOUNT_ID}:role/{name}"
        elif kind == "aws:lambda/function:Function":
            outputs["arn"] = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"
        else:
            outputs.setdefault("arn", f"arn:aws:mock:{REGION}:{ACCOUNT_ID}:{args.name}")
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": ACCOUNT_ID,
                "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/ci",
                "userId": "AIDA",
                "id": ACCOUNT_ID,
            }
        if args.token == "aws:index/getRegion:getRegion":
            return {
                "name": REGION,
                "region": REGION,
                "id": REGION,
                "endpoint": "x",
                "description": "x",
            }
        if args.token == "aws:index/getPartition:getPartition":
            return {
                "partition": "aws",
                "dnsSuffix": "amazonaws.com",
                "id": "aws",
                "reverseDnsPrefix": "com.amazonaws",
            }
        return {}


@dataclass
class Stack:
    """What one run of the program declared."""

    resources: list[pulumi.runtime.MockResourceArgs]
    outputs: dict[str, Any] = field(default_factory=dict)

    def of(self, typ: str) -> list[pulumi.runtime.MockResourceArgs]:
        return [r for r in self.resources if r.typ == typ]

    def inputs(self, typ: str) -> list[dict[str, Any]]:
        return [r.inputs for r in self.of(typ)]

    def named(self, typ: str, name: str) -> dict[str, Any]:
        (found,) = [r.inputs for r in self.of(typ) if r.inputs.get("name") == name]
        return found

    def policies(self) -> list[tuple[str, dict[str, Any]]]:
        """Every IAM-style policy document the stack declares, with the resource type."""
        found = []
        for resource in self.resources:
            for key in ("policy", "assumeRolePolicy"):
                raw = resource.inputs.get(key)
                if isinstance(raw, str) and raw.strip().startswith("{"):
                    found.append((resource.typ, json.loads(raw)))
        return found


def run_stack(config: Any, services: Mapping[str, Any]) -> Stack:
    from llmmon_infra.components import Account
    from llmmon_infra.program import deploy

    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project="llmmon", stack=config.stack, preview=False)
    stack = Stack(mocks.resources)

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        outputs = deploy(config, services, Account(ACCOUNT_ID, REGION))
        return pulumi.Output.from_input(outputs).apply(stack.outputs.update)

    program()
    return stack


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    from llmmon_shared.spec import discover

    return discover()
