"""Evaluation backends: turn a working tree into a score."""
