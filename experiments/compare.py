"""``python -m experiments.compare``: the user-facing name of :mod:`reporting.compare`."""

from reporting.compare import main

if __name__ == "__main__":
    raise SystemExit(main())
