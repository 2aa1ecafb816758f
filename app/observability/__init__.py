"""Metrics, logging and error reporting."""
