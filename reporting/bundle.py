"""Results bundles: ``results/<experiment>/<UTC timestamp>/``.

Layout: ``config.json`` (resolved), ``manifest.json`` (provenance and validity), ``raw/``
(tools' own outputs, never deleted), tidy long-format CSVs with units in column names,
``summary.json``, plots (PNG + SVG). Every file is written atomically; a trial's rows are on
disk before the next trial starts.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import math
import os
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from common.errors import UserError
from common.files import atomic_write_text

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent


def utc_stamp(now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.timezone.utc)
    return now.strftime("%Y%m%dT%H%M%SZ")


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(_jsonable(data), indent=2, sort_keys=False) + "\n")


class Bundle:
    """One results folder being written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.raw = path / "raw"
        self._columns: dict[str, list[str]] = {}
        self._rows: dict[str, list[dict[str, Any]]] = {}

    @classmethod
    def create(cls, out_root: Path, experiment: str) -> Bundle:
        """The new folder ``out_root/experiment/<UTC stamp>/`` with ``raw/``.

        The folders it creates (``out_root`` and ``out_root/experiment`` included) belong to
        the user who ran sudo (:func:`invoking_user`); the files written later are handed
        over by :meth:`link_latest`.
        """
        base = out_root / experiment
        new_dirs = [d for d in (out_root, base) if not d.exists()]
        try:
            base.mkdir(parents=True, exist_ok=True)
            stamp = utc_stamp()
            path = base / stamp
            n = 1
            while path.exists():  # two runs in the same second
                n += 1
                path = base / f"{stamp}-{n}"
            path.mkdir()
            (path / "raw").mkdir()
        except OSError as exc:
            raise UserError(f"cannot write results under {out_root}: "
                            f"{exc.strerror or exc}") from None
        give_to_invoking_user([*new_dirs, path, path / "raw"])
        return cls(path)

    def trial_raw(self, trial: int) -> Path:
        d = self.raw / f"trial-{trial:03d}"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def append_rows(self, table: str, rows: Iterable[Mapping[str, Any]]) -> None:
        """Add rows to ``<table>.csv`` and rewrite it atomically (files stay small)."""
        rows = [dict(r) for r in rows]
        if not rows and table not in self._rows:
            return  # no file for a table that never had a row
        cols = self._columns.setdefault(table, [])
        for r in rows:
            for k in r:
                if k not in cols:
                    cols.append(k)
        self._rows.setdefault(table, []).extend(rows)
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for r in self._rows[table]:
            w.writerow({k: _csv_value(r.get(k)) for k in cols})
        atomic_write_text(self.path / f"{table}.csv", buf.getvalue())

    def write_json(self, name: str, data: Any) -> None:
        write_json(self.path / name, data)

    def link_latest(self, out_root: Path) -> None:
        """Point ``<out>/latest`` (and ``<out>/<experiment>/latest``) at this bundle, and hand
        the whole bundle and both links to the user who ran sudo (the runner's last step, also
        after an interrupted run)."""
        links = []
        for parent in (out_root, self.path.parent):
            link = parent / "latest"
            tmp = parent / f".latest.{os.getpid()}"
            try:
                tmp.unlink(missing_ok=True)
                tmp.symlink_to(os.path.relpath(self.path, parent))
                os.replace(tmp, link)
                links.append(link)
            except OSError as exc:
                log.warning("could not update %s: %s", link, exc)
        give_to_invoking_user([*_tree(self.path), *links])


def invoking_user(environ: Mapping[str, str] | None = None,
                  euid: int | None = None) -> tuple[int, int] | None:
    """``(uid, gid)`` of the user who ran sudo: ``SUDO_UID``/``SUDO_GID`` when this process runs
    as root and both are numbers other than 0; else None (nothing to hand over)."""
    env = os.environ if environ is None else environ
    if (os.geteuid() if euid is None else euid) != 0:
        return None
    try:
        uid, gid = int(env["SUDO_UID"]), int(env["SUDO_GID"])
    except (KeyError, ValueError):
        return None
    return None if uid == 0 or uid < 0 or gid < 0 else (uid, gid)


def _tree(root: Path) -> list[Path]:
    """``root`` and everything under it, symbolic links not followed."""
    paths = [root]
    for dirpath, dirnames, filenames in os.walk(root):
        paths += [Path(dirpath, n) for n in (*dirnames, *filenames)]
    return paths


def give_to_invoking_user(paths: Iterable[Path]) -> None:
    """chown ``paths`` (links themselves, not their targets) to :func:`invoking_user`; a path
    that cannot be changed is logged and skipped (results stay usable by root)."""
    owner = invoking_user()
    if owner is None:
        return
    for p in paths:
        try:
            os.chown(p, *owner, follow_symlinks=False)
        except OSError as exc:
            log.warning("could not give %s to uid %d: %s", p, owner[0], exc)


def cell_value(value: Any, missing: str = "", digits: int = 6,
               fixed_from: float = math.inf) -> Any:
    """A value as a table cell: None and NaN as ``missing``, a float to ``digits``
    significant digits (without decimals from ``fixed_from`` up), anything else unchanged."""
    if value is None:
        return missing
    if isinstance(value, float):
        if math.isnan(value):
            return missing
        return f"{value:.{digits}g}" if abs(value) < fixed_from else f"{value:.0f}"
    return value


def _csv_value(v: Any) -> Any:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and math.isfinite(v) and abs(v) >= 1:
        # Data, not display: six decimals keep a Unix time to the microsecond (six significant
        # digits made 1796206757.12 into 1.79621e+09, ten seconds off).
        return f"{v:.6f}".rstrip("0").rstrip(".")
    return cell_value(v)


def read_json_object(path: Path) -> dict[str, Any] | None:
    """A bundle's JSON file as a dict; None when missing; UserError (one line) when unreadable,
    not JSON, or not an object."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON: {exc.msg} (line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object")
    return data


def read_bundle_json(bundle: Path, name: str, what: str = "") -> dict[str, Any]:
    """``bundle/name`` as a dict; UserError (one line) when ``bundle`` is not a directory or
    the file is missing, saying the folder is not a results bundle ``what`` (e.g. "with a
    summary")."""
    if not bundle.is_dir():
        raise UserError(f"{bundle} is not a directory")
    data = read_json_object(bundle / name)
    if data is None:
        raise UserError(f"{bundle} is not a results bundle{' ' + what if what else ''} "
                        f"(no {name})")
    return data


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def git_commit() -> str:
    try:
        res = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"],
                             capture_output=True, text=True, timeout=5, check=False)
        commit = res.stdout.strip() if res.returncode == 0 else "unknown"
        dirty = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True,
                               timeout=5, check=False).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def package_versions(names: Iterable[str]) -> dict[str, str]:
    from importlib import metadata

    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out
