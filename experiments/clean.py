"""``python -m experiments.clean``: the user-facing name of :mod:`lab.clean`."""

from lab.clean import main

if __name__ == "__main__":
    raise SystemExit(main())
