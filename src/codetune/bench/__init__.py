"""LiveCodeBench evaluation: problems, prompts, generation, extraction, sandboxed grading, metrics."""
