"""Anomaly model: a convolutional autoencoder trained on normal frames (DESIGN.md)."""
