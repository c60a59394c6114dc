"""Inference engines: one module per engine, found through the ``terminus.engines`` entry points."""
