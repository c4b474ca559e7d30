"""Kernel glue for mean (not written yet)."""
