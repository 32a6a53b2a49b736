"""Evaluation of restored volumes and the side-by-side benchmark of every method."""
