"""Benchmarks: the main jobs on real data (``openmer benchmark NAME``)."""
