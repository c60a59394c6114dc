"""LoRA fine-tuning of cached models into GGUF adapters."""
