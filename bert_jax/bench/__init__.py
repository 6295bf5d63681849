"""Benchmarks behind `bert-jax bench NAME`; each module defines `main(argv) -> int`."""
