"""Depthwise conv2d glue, called by conv2d.py (not written yet)."""
