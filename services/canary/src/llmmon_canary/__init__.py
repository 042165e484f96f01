"""llmmon canary: a fixed probe set sent to each model on a schedule."""
