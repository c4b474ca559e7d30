"""Kernel glue for dequantize (not written yet)."""
