"""Benchmark scripts of pipelines-events and the baselines they compare against."""
