"""``python -m experiments.report``: the user-facing name of :mod:`reporting.report`."""

from reporting.report import main

if __name__ == "__main__":
    raise SystemExit(main())
