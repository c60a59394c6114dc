"""Model cards, the catalog, the verified content-addressed cache and its sources."""
