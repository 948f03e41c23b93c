"""Benchmarks behind `fuyao bench`: simulation throughput, traffic safety, and references to compare with."""
