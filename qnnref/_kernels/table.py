"""Kernel glue for table (not written yet)."""
