"""omnihook's benchmarks: ``uv run python -m bench`` (see docs/performance.md for what it measures)."""
