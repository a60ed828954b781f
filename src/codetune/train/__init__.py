"""LoRA supervised fine-tuning on TRL, with validation and test loss streamed to the run folder."""
