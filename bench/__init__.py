"""omnihook's benchmarks: ``uv run python -m bench`` (see the README for what it measures)."""
