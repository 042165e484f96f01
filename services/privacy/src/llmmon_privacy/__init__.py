"""llmmon privacy service."""
