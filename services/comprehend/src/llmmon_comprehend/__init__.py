"""llmmon comprehend service: sentiment and toxicity of responses (and optionally prompts)."""
