"""Planners' sweeps: layouts x policies x variants x seeds x seasons, run as Ray tasks."""
