"""Kernel glue for clamp (not written yet)."""
