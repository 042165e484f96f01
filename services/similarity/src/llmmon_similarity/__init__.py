"""llmmon similarity service: how relevant each response is to its prompt."""
