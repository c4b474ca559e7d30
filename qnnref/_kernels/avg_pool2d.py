"""Kernel glue for avg_pool2d (not written yet)."""
