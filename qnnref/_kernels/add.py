"""Kernel glue for add (not written yet)."""
