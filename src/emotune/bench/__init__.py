"""Benchmarking: matrices of runs, their tables, and the baselines."""
