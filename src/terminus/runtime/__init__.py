"""The runtime: which models are loaded, whether they fit, and running requests on them."""
