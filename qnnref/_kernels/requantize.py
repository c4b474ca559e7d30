"""Kernel glue for requantize (not written yet)."""
