"""``python -m experiments.bench [options]`` = ``python -m experiments.run bench ...``.

Only this entry point imports the CLI (which imports the registry, which imports the bench
package), so the package itself never needs ``experiments.run``: no import cycle.
"""

from __future__ import annotations

import sys

from experiments import run


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark through the one experiments CLI; its exit code."""
    return run.main(["bench", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
