"""The twin's static world: observatory sites and telescopes."""
