"""Files: writing them so a reader never sees half of one, and reading the structured text
(YAML, TOML, JSON) that users write by hand: config files, cluster files."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, as a package (setup.py: tomli; python_version<'3.11')
    import tomli as tomllib

DOCUMENT_FORMATS = ("yaml", "toml", "json")


class DocumentError(ValueError):
    """Text that is not valid in its format; the message is the parser's first line."""


def atomic_write_text(path: Path, text: str) -> None:
    """Write then rename, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def parse_document(text: str, fmt: str) -> Any:
    """Parse ``text`` as ``fmt`` (one of :data:`DOCUMENT_FORMATS`; YAML with the safe loader).

    DocumentError (the parser's first line, or its error type) when the text is not valid.
    """
    parse = {"yaml": yaml.safe_load, "toml": tomllib.loads, "json": json.loads}[fmt]
    try:
        return parse(text)
    except (yaml.YAMLError, ValueError) as exc:  # TOML and JSON errors are ValueErrors
        lines = str(exc).strip().splitlines()
        raise DocumentError(lines[0] if lines else type(exc).__name__) from None
