"""Benchmark scripts: each prints its figures and ends with `RESULT name=value` lines (docs/benchmarks.md)."""
