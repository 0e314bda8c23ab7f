"""Evaluation you can rerun: datasets, metrics, score files and reports."""
