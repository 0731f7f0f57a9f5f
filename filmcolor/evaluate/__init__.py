"""Measuring colorization: metrics against a ground truth."""
