"""`python -m twin` is the `skytwin` command."""

from twin.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
