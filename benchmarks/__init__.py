"""Benchmarks of the trigger at scale: many invocations, one triggerer, CloudWatch Logs' request quota.

Run ``python -m benchmarks.scale`` (see BENCHMARKS.md at the repository root).
"""
