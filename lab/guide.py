"""The lab guides' machine-readable parts: launch lines, ``mininet>`` commands, expected output.

A guide (``docs/labs/*.md``) is Markdown for students; the tests read the same file, so the
commands a guide shows and the commands the tests run cannot drift apart:

- a fenced block (```` ```sh ````) holding ``python -m topologies.ics ...`` or
  ``python -m topologies.classic ...`` starts a *part*: one lab, started with those options;
- a fenced block tagged ``mininet`` holds ``mininet> COMMAND`` lines, each followed by an
  excerpt of what it prints. In an excerpt, a line ``...`` stands for any lines, ``...``
  inside a line for any text, and every number for any number (times and counters vary);
- ``<!-- expect: REGEX -->`` after a ``mininet`` block must match the output of that block's
  last command (the checks that numbers matter to, e.g. ``0% packet loss``);
- ``<!-- needs: MODULE -->`` before a launch block: the part needs that Python module (a part
  of the project still being written); the tests skip the part while it is missing.

``python -m lab.guide GUIDE.md [--part N]`` prints a part's commands as a script
for ``python -m topologies.ics --script FILE``.

What it cannot do: check output that no excerpt or expect line describes, or run commands
outside ``mininet`` blocks (shell commands on the machine itself are for reading only).
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

PROMPT = "mininet> "
LAB_MODULES = ("topologies.ics", "topologies.classic")
_FENCE = re.compile(r"^```\s*([\w-]*)\s*$")
_EXPECT = re.compile(r"<!--\s*expect:\s*(.*?)\s*-->")
_NEEDS = re.compile(r"<!--\s*needs:\s*([\w.]+)\s*-->")
_NUMBER = re.compile(r"\d+(?:\.\d+)*")


class GuideError(ValueError):
    """A guide breaks the format above; the message names the guide's line."""


@dataclass
class Step:
    """One ``mininet>`` command, its excerpt (lines) and its extra regex checks."""

    command: str
    excerpt: list[str] = field(default_factory=list)
    expects: list[str] = field(default_factory=list)


@dataclass
class Part:
    """One lab session: the module and options it starts with, then its steps.

    argv: the options after ``-m MODULE`` with ``--cli`` removed.
    needs: modules the part needs (``<!-- needs: ... -->``).
    """

    module: str
    argv: list[str]
    line: int
    needs: list[str] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)

    def script(self) -> str:
        """The commands, one a line, as ``--script`` reads them."""
        return "".join(f"{s.command}\n" for s in self.steps)


def _launch(line: str) -> tuple[str, list[str]] | None:
    words = shlex.split(line)
    for i, word in enumerate(words[:-1]):
        if word == "-m" and words[i + 1] in LAB_MODULES:
            return words[i + 1], [w for w in words[i + 2:] if w != "--cli"]
    return None


def parse_guide(text: str, name: str = "guide") -> list[Part]:
    """The parts of a guide, in order; GuideError for a command before any launch line."""
    parts: list[Part] = []
    pending_needs: list[str] = []
    last_step: Step | None = None
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        if fence is None:
            pending_needs += _NEEDS.findall(line)
            for regex in _EXPECT.findall(line):
                if last_step is None:
                    raise GuideError(f"{name}:{i + 1}: expect comment without a command")
                re.compile(regex)
                last_step.expects.append(regex)
            i += 1
            continue
        tag = fence.group(1)
        body_start = i + 1
        i += 1
        body: list[str] = []
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        i += 1  # the closing fence
        if tag == "mininet":
            for offset, body_line in enumerate(body):
                if body_line.startswith(PROMPT):
                    if not parts:
                        raise GuideError(f"{name}:{body_start + offset + 1}: a mininet command "
                                         "before any launch line")
                    last_step = Step(body_line[len(PROMPT):].strip())
                    parts[-1].steps.append(last_step)
                elif last_step is not None and parts and last_step in parts[-1].steps:
                    last_step.excerpt.append(body_line)
            continue
        for offset, body_line in enumerate(body):
            launch = _launch(body_line)
            if launch is not None:
                parts.append(Part(module=launch[0], argv=launch[1],
                                  line=body_start + offset + 1, needs=pending_needs))
                pending_needs = []
                last_step = None
    return parts


def _line_regex(excerpt_line: str) -> re.Pattern[str]:
    pieces = []
    for k, chunk in enumerate(excerpt_line.strip().split("...")):
        if k:
            pieces.append(".*?")
        pos = 0
        for m in _NUMBER.finditer(chunk):
            pieces.append(re.escape(chunk[pos:m.start()]))
            pieces.append(r"\d+(?:\.\d+)*")
            pos = m.end()
        pieces.append(re.escape(chunk[pos:]))
    pattern = re.sub(r"(\\ )+", r"\\s+", "".join(pieces))
    return re.compile(pattern)


def excerpt_mismatch(excerpt: Sequence[str], output: str) -> str | None:
    """The first excerpt line not found in ``output`` (in order), or None when all are."""
    out_lines = output.splitlines()
    pos = 0
    for line in excerpt:
        if not line.strip() or line.strip() == "...":
            continue
        regex = _line_regex(line)
        for j in range(pos, len(out_lines)):
            if regex.search(out_lines[j]):
                pos = j + 1
                break
        else:
            return line
    return None


def split_transcript(transcript: str) -> list[tuple[str, str]]:
    """(command, its output) pairs from a ``--script`` transcript (echoed prompt lines)."""
    pairs: list[tuple[str, list[str]]] = []
    for line in transcript.splitlines():
        if line.startswith(PROMPT):
            pairs.append((line[len(PROMPT):].strip(), []))
        elif pairs:
            pairs[-1][1].append(line)
    return [(cmd, "\n".join(out)) for cmd, out in pairs]


def main(argv: Sequence[str] | None = None) -> int:
    """Print the commands of a guide's part (1-based) as a --script file."""
    parser = argparse.ArgumentParser(prog="python -m lab.guide",
                                     description="A lab guide's commands as a script.")
    parser.add_argument("guide", type=Path)
    parser.add_argument("--part", type=int, default=1, help="1-based part number (default 1)")
    args = parser.parse_args(argv)
    try:
        parts = parse_guide(args.guide.read_text(), str(args.guide))
    except (OSError, GuideError, re.error) as exc:
        sys.stderr.write(f"python -m lab.guide: error: {exc}\n")
        return 2
    if not 1 <= args.part <= len(parts):
        sys.stderr.write(f"python -m lab.guide: error: {args.guide} has "
                         f"{len(parts)} part(s), not {args.part}\n")
        return 2
    part = parts[args.part - 1]
    sys.stdout.write(f"# python -m {part.module} {' '.join(part.argv)} --script FILE\n")
    sys.stdout.write(part.script())
    return 0


if __name__ == "__main__":
    sys.exit(main())
