"""llmmon attacks service."""
