"""Kernel glue for max_pool2d (not written yet)."""
