"""envs: see DESIGN.md (built in later issues)."""
