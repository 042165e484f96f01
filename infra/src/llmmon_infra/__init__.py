"""llmmon Pulumi program."""
