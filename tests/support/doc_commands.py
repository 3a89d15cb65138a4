"""The shell commands of README.md and docs/: fenced blocks, their tags and markers.

The documents are read by people and by the tests alike, so a command the docs show is a
command a test types. The format:

- ```` ```sh ```` — commands a user types, one a line (``\\`` continues a line, ``#`` starts a
  comment). A block is run by ``tests/integration/test_docs_commands.py`` as a bash script from
  the repository root, unless a marker on the line just above the fence says otherwise:
  ``<!-- not-run: REASON -->`` (it cannot run in CI, e.g. ``sudo make run`` itself) or
  ``<!-- run-by: tests/integration/test_x.py -->`` (a dedicated test runs it, reading it from
  here). ``<!-- expect: REGEX -->`` lines just below a block must match its output.
  Every line of a run block starts with ``sudo`` (run as root) or none does (run as an
  unprivileged user, as typed).
- ```` ```text ```` — output; ```` ```mininet ```` — the lab guides' prompt commands
  (:mod:`lab.guide`, run by ``test_labs.py``); other tags (``toml``, ``json``...) are data.
- An untagged block must not look like commands (it would escape this check).
- In ``docs/labs/NN-*.md``, an ``sh`` block holds lab launch lines, run by ``test_labs.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RUN_BY_LABS = "tests/integration/test_labs.py"
_FENCE = re.compile(r"^```\s*([\w-]*)\s*$")
_NOT_RUN = re.compile(r"^<!--\s*not-run:\s*(.*?)\s*-->$")
_RUN_BY = re.compile(r"^<!--\s*run-by:\s*(\S+)\s*-->$")
_EXPECT = re.compile(r"^<!--\s*expect:\s*(.*?)\s*-->$")
LOOKS_LIKE_COMMAND = re.compile(
    r"^\s*(\$ |sudo |python3? |\.venv/|make |mn |ovs-|tshark |nmap |pip |git |\. \.venv)")
_LAB_GUIDE = re.compile(r"^docs/labs/\d\d-.*\.md$")


@dataclass
class Block:
    """One fenced block: where it is, its tag, its lines and the markers around it.

    line: 1-based line of the opening fence. not_run / run_by: the marker's reason / test file
    (None without one). expects: regexes the block's output must match.
    """

    doc: str
    line: int
    tag: str
    body: list[str]
    not_run: str | None = None
    run_by: str | None = None
    expects: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"

    def commands(self) -> list[str]:
        """The commands, continuation lines joined, comments and blank lines dropped."""
        out: list[str] = []
        pending = ""
        for raw in self.body:
            line = pending + raw.strip()
            if line.endswith("\\"):
                pending = line[:-1].rstrip() + " "
                continue
            pending = ""
            line = re.sub(r"(^|\s)#.*$", "", line).strip()
            if line:
                out.append(line)
        return out

    def script(self) -> str:
        return "\n".join(self.body) + "\n"

    @property
    def as_root(self) -> bool:
        """Typed with ``sudo`` (every command) rather than as the user (no command)."""
        return all(c.startswith("sudo ") for c in self.commands())


def parse_blocks(text: str, doc: str) -> list[Block]:
    """Every fenced block of one Markdown text, with its markers; ValueError on an unclosed
    fence (the message names the line)."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if fence is None:
            i += 1
            continue
        start = i
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        if j == len(lines):
            raise ValueError(f"{doc}:{start + 1}: fence never closed")
        block = Block(doc=doc, line=start + 1, tag=fence.group(1), body=lines[start + 1:j])
        above = lines[start - 1].strip() if start else ""
        if m := _NOT_RUN.match(above):
            block.not_run = m.group(1)
        elif m := _RUN_BY.match(above):
            block.run_by = m.group(1)
        k = j + 1
        while k < len(lines) and (m := _EXPECT.match(lines[k].strip())):
            block.expects.append(m.group(1))
            k += 1
        blocks.append(block)
        i = j + 1
    return blocks


def doc_files() -> list[Path]:
    """README.md and every Markdown file under docs/ (lab guides included)."""
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def all_blocks() -> list[Block]:
    out: list[Block] = []
    for path in doc_files():
        out += parse_blocks(path.read_text(), str(path.relative_to(REPO)))
    return out


def shell_blocks() -> list[Block]:
    """The ``sh`` blocks; a lab guide's are marked run by test_labs.py."""
    blocks = [b for b in all_blocks() if b.tag == "sh"]
    for b in blocks:
        if _LAB_GUIDE.match(b.doc) and b.run_by is None and b.not_run is None:
            b.run_by = RUN_BY_LABS
    return blocks


def run_here() -> list[Block]:
    """The blocks tests/integration/test_docs_commands.py runs, in document order."""
    return [b for b in shell_blocks() if b.not_run is None and b.run_by is None]


def block_run_by(test_file: str, doc: str) -> list[Block]:
    """The blocks of ``doc`` that name ``test_file`` as their runner."""
    return [b for b in shell_blocks() if b.doc == doc and b.run_by == test_file]


def sudo_shim(folder: Path) -> Path:
    """A folder with a ``sudo`` that runs its arguments as they are (``VAR=x cmd`` included):
    the tests already run as root, and CI machines need not have sudo. Put it first on PATH."""
    bin_dir = folder / "docs-bin"
    bin_dir.mkdir(exist_ok=True)
    shim = bin_dir / "sudo"
    shim.write_text('#!/bin/sh\nexec env "$@"\n')
    shim.chmod(0o755)
    return bin_dir
