"""llmmon refusal service: how often each model refuses, graded and explained."""
