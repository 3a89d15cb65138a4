"""Make Ryu 4.34 importable on Python 3.11 with modern eventlet.

Ryu 4.34 does ``from eventlet.wsgi import ALREADY_HANDLED``, a name eventlet removed; with the
old eventlet that still had it, Ryu does not run on Python 3.11 at all. Setting the name to a
sentinel before Ryu is imported is enough (measured: ``ryu-manager`` then runs and forwards).

Two ways to apply the fix:

- in-process, :func:`apply_eventlet_fix` (what :mod:`controllers.engine` calls);
- for a habitual ``ryu-manager controllers/l2_switch.py`` in the venv,
  ``python -m controllers.ryu_compat --install`` writes a one-line ``.pth`` file into the
  venv's site-packages. It registers an import hook that acts only when ``eventlet.wsgi`` is
  imported, so ordinary Python start-ups in the venv never import eventlet.

This module must stay importable without eventlet or Ryu installed.
"""

from __future__ import annotations

import argparse
import logging
import sys
import sysconfig
from pathlib import Path

LOG = logging.getLogger(__name__)

PTH_NAME = "sdnics_ryu_compat.pth"

# Executed by the site module at every interpreter start in the venv, so it must be cheap
# and must never raise: it only puts a finder on sys.meta_path. The finder ignores every
# module except eventlet.wsgi and, for that one, wraps the real loader so the sentinel is set
# right after the module body runs (before anything can do ``from eventlet.wsgi import ...``).
_HOOK_SOURCE = '''
class _SdnicsEventletWsgiHook:
    """SDN-ICS Lab: eventlet.wsgi.ALREADY_HANDLED for Ryu 4.34 (controllers.ryu_compat)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "eventlet.wsgi":
            return None
        import importlib.machinery
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        real_exec = loader.exec_module

        def exec_module(module):
            real_exec(module)
            if not hasattr(module, "ALREADY_HANDLED"):
                module.ALREADY_HANDLED = object()

        loader.exec_module = exec_module
        return spec


if not any(type(f).__name__ == "_SdnicsEventletWsgiHook" for f in sys.meta_path):
    sys.meta_path.insert(0, _SdnicsEventletWsgiHook())
'''


def apply_eventlet_fix() -> None:
    """Give ``eventlet.wsgi`` the ``ALREADY_HANDLED`` name Ryu 4.34 imports; idempotent.

    Imports eventlet.wsgi (not Ryu). Call before the first ``import ryu...``.
    """
    import eventlet.wsgi

    if not hasattr(eventlet.wsgi, "ALREADY_HANDLED"):
        eventlet.wsgi.ALREADY_HANDLED = object()


def pth_line() -> str:
    """The single line written into the ``.pth`` file (site executes lines starting ``import``)."""
    return f"import sys; exec(compile({_HOOK_SOURCE!r}, {PTH_NAME!r}, 'exec'))\n"


def default_site_packages() -> Path:
    """The purelib directory of the running interpreter (the venv's site-packages in a venv)."""
    return Path(sysconfig.get_paths()["purelib"])


def install(site_packages: Path | None = None) -> tuple[Path, bool]:
    """Write the ``.pth`` file; returns (path, changed). Rewrites only when content differs."""
    target = (site_packages or default_site_packages()) / PTH_NAME
    content = pth_line()
    if target.exists() and target.read_text() == content:
        return target, False
    target.write_text(content)
    return target, True


def uninstall(site_packages: Path | None = None) -> tuple[Path, bool]:
    """Remove the ``.pth`` file if present; returns (path, changed)."""
    target = (site_packages or default_site_packages()) / PTH_NAME
    if not target.exists():
        return target, False
    target.unlink()
    return target, True


def main(argv: list[str] | None = None) -> int:
    """CLI: ``python -m controllers.ryu_compat --install|--uninstall [--site-packages DIR]``."""
    parser = argparse.ArgumentParser(
        prog="python -m controllers.ryu_compat",
        description="Install/remove the import hook that lets Ryu 4.34 run on Python 3.11.",
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--install", action="store_true", help="write the .pth hook")
    action.add_argument("--uninstall", action="store_true", help="remove the .pth hook")
    parser.add_argument("--site-packages", type=Path, default=None,
                        help="directory to write into (default: this interpreter's purelib)")
    args = parser.parse_args(argv)
    if args.site_packages is not None and not args.site_packages.is_dir():
        print(f"ryu_compat: not a directory: {args.site_packages}", file=sys.stderr)
        return 2
    try:
        if args.install:
            path, changed = install(args.site_packages)
            verb = "installed" if changed else "already installed"
        else:
            path, changed = uninstall(args.site_packages)
            verb = "removed" if changed else "not installed"
    except OSError as exc:
        print(f"ryu_compat: {exc}", file=sys.stderr)
        return 2
    print(f"ryu_compat: {verb}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
