"""Kernel glue for quantize (not written yet)."""
