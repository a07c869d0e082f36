"""Experiment drivers: load data, call library functions, write JSON results."""
