"""The run pipeline: claim → parameters → source → processing → output → delivery → finish."""
