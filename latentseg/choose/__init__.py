"""Choosing segmentations: selection over families and k, likelihood-ratio tests, stability, comparison."""
