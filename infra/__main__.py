"""Pulumi entry point (``main: infra/`` in Pulumi.yaml): read the stack config once, discover the
installed metric services, build the stack."""

from llmmon_infra.config import from_pulumi
from llmmon_infra.program import deploy
from llmmon_shared.spec import discover

deploy(from_pulumi(), discover())
