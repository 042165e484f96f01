"""llmmon traffic service: what the log itself says about each call (guardrails, truncation,
tokens, latency). It needs no model."""
