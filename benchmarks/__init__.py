"""Benchmark sources, builders, samplers and corruptions: what the questions are."""
