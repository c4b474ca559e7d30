"""Kernel glue for softmax (not written yet)."""
