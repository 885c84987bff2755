"""Offline dataset preparation: photos -> landmark-fitted masks -> TFDS (ArrayRecord).

Imports no JAX: this runs on CPU nodes with many cores.
"""
