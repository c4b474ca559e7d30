"""Kernel glue for mul (not written yet)."""
