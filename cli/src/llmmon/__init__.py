"""llmmon command line tools."""
