"""Stack files: every key is known, Pulumi.yaml's documented defaults are the program's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from llmmon_infra.config import StackConfig, config_keys, from_pulumi

ROOT = Path(__file__).resolve().parents[2]


def project_config() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]


def test_pulumi_yaml_declares_every_key_with_the_programs_default() -> None:
    declared = project_config()
    assert set(declared) == set(config_keys()) - {"services"}
    defaults = StackConfig.from_mapping("dev", {k: v["default"] for k, v in declared.items()})
    assert defaults == StackConfig(stack="dev")
    assert all(v.get("description") for v in declared.values())


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_stack_files_parse(stack: str) -> None:
    raw = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    values = {key.split(":", 1)[1]: value for key, value in raw.items()}
    config = StackConfig.from_mapping(stack, values)
    assert config.models and config.alarm_emails
    assert config.prefix == f"llmmon-{stack}"


def test_prod_adopts_the_existing_bucket_and_logging() -> None:
    raw = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())["config"]
    config = StackConfig.from_mapping("prod", {k.split(":", 1)[1]: v for k, v in raw.items()})
    assert config.existing_bucket and not config.manage_invocation_logging
    assert config.sample_rate == 1.0 and config.anomaly_detection


def test_unknown_and_invalid_keys_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown"):
        StackConfig.from_mapping("x", {"sampelRate": "0.5"})
    with pytest.raises(ValueError, match="sampleRate"):
        StackConfig.from_mapping("x", {"sampleRate": "0"})
    with pytest.raises(ValueError, match="list"):
        StackConfig.from_mapping("x", {"models": "anthropic.claude-v2"})


def test_engine_strings_are_read_like_yaml_values() -> None:
    """The Pulumi engine hands every value over as a string (objects and lists as JSON)."""
    pulumi.runtime.set_all_config(
        {
            "llmmon:models": '["m1","m2"]',
            "llmmon:sampleRate": "0.5",
            "llmmon:anomalyDetection": "true",
            "llmmon:logExpirationDays": "30",
            "llmmon:services": '{"refusal": {"batchSize": 20}}',
            "llmmon:namespace": "team",
        }
    )
    try:
        config = from_pulumi()
    finally:
        pulumi.runtime.set_all_config({})
    assert config.models == ("m1", "m2") and config.sample_rate == 0.5
    assert config.anomaly_detection is True and config.log_expiration_days == 30
    assert config.services == {"refusal": {"batchSize": 20}} and config.namespace == "team"


def test_dropping_a_metric_an_alarm_reads_is_refused() -> None:
    from llmmon_infra.components import service_environment
    from llmmon_shared.spec import discover

    spec = discover()["refusal"]
    fine = StackConfig.from_mapping(
        "x",
        {"services": {"refusal": {"environment": {"LLMMON_DROP_METRICS": "RefusalFuzzyScore"}}}},
    )
    assert service_environment(spec, fine)["LLMMON_DROP_METRICS"] == "RefusalFuzzyScore"
    alarmed = StackConfig.from_mapping(
        "x", {"services": {"refusal": {"environment": {"LLMMON_DROP_METRICS": "Refusal"}}}}
    )
    with pytest.raises(ValueError, match="turns off Refusal, which an alarm of refusal reads"):
        service_environment(spec, alarmed)
