"""Scheduling policies: baselines, learned agents and the offline upper bound."""
