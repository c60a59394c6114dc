"""GGUF quantization with importance matrices, and quality comparison of two models."""
