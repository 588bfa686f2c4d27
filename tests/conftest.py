"""Shared fixtures. Importing ``twin`` configures astropy offline for every test."""

import matplotlib

import twin  # noqa: F401

matplotlib.use("Agg")
