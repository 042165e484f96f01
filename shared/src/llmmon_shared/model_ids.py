"""The ``ModelId`` dimension: one documented normalisation of what a log record's ``modelId`` holds.

- a plain id (``anthropic.claude-3-haiku-20240307-v1:0``): unchanged;
- a cross-region inference profile id (``us.anthropic.claude-...``, ``eu.``, ``apac.``,
  ``global.``...): unchanged; a profile routes across regions and is watched apart from the
  plain id;
- a foundation-model ARN (``arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-...``):
  the id after ``foundation-model/``, the same model as the plain id;
- a system-defined inference-profile ARN (``arn:...:inference-profile/us.anthropic.claude-...``):
  the profile id after ``inference-profile/``, the same as calling with that id;
- any other Bedrock ARN (``application-inference-profile/``, ``provisioned-model/``,
  ``custom-model/``, ``imported-model/``, ``prompt-router/``, ``default-prompt-router/``...):
  ``<resource type>/<resource id>``; the type stays, so two resources that share an id never
  merge.

Account and region are dropped (both are per-stack already); a value that is not a valid dimension
value is reported as ``Other`` by the dimension policy. Alarm names are built from the normalised
id by :meth:`llmmon_shared.alarms.AlarmNames.alarm`, which never maps two ids to one name.
"""

from __future__ import annotations

__all__ = ["normalise_model_id"]

_SAME_AS_ID = ("foundation-model/", "inference-profile/")


def normalise_model_id(model_id: str) -> str:
    model_id = model_id.strip()
    if not model_id.startswith("arn:"):
        return model_id
    parts = model_id.split(":", 5)
    if len(parts) < 6 or not parts[5]:
        return model_id
    resource = parts[5]
    for prefix in _SAME_AS_ID:
        if resource.startswith(prefix) and len(resource) > len(prefix):
            return resource[len(prefix) :]
    return resource
