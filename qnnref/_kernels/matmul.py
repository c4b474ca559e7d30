"""Kernel glue for matmul (not written yet)."""
