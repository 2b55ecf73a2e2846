"""Submissions: spec, validation before any GPU time, the folder queue, the worker and publishing results."""
