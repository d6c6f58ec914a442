"""What Airflow sees: the operator, the trigger, the extra links and the provider's metadata.

The operator checks its input and invokes; the trigger gathers evidence from `sources` and asks `verdict`
what it means. Nothing below this package imports it.
"""
