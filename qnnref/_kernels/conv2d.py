"""Kernel glue for conv2d (not written yet)."""
