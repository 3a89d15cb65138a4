"""Every command a user would type in README.md and docs/ is run by a test, or says why not
(the format: tests/support/doc_commands.py)."""

from __future__ import annotations

import pytest

from tests.support.doc_commands import (
    LOOKS_LIKE_COMMAND,
    REPO,
    RUN_BY_LABS,
    all_blocks,
    parse_blocks,
    shell_blocks,
)

SAMPLE = """\
Intro.

```sh
sudo make run   # comment
python -m a \\
  --b
```
<!-- expect: ok -->

<!-- not-run: too slow -->
```sh
sudo make test
```

<!-- run-by: tests/integration/test_x.py -->
```sh
mn --test pingall
```

```text
output
```
"""


def test_parse_blocks_reads_tags_markers_and_commands() -> None:
    blocks = parse_blocks(SAMPLE, "doc.md")
    assert [b.tag for b in blocks] == ["sh", "sh", "sh", "text"]
    first, slow, dedicated, _ = blocks
    assert first.commands() == ["sudo make run", "python -m a --b"]
    assert first.expects == ["ok"] and first.not_run is None and first.run_by is None
    assert first.line == 3 and not first.as_root
    assert slow.not_run == "too slow" and slow.as_root
    assert dedicated.run_by == "tests/integration/test_x.py"


def test_unclosed_fence_names_the_line() -> None:
    with pytest.raises(ValueError, match=r"doc\.md:2: fence never closed"):
        parse_blocks("x\n```sh\nls\n", "doc.md")


def test_every_shell_block_is_run_or_says_why_not() -> None:
    problems = []
    for b in shell_blocks():
        if b.not_run is not None:
            if not b.not_run.strip():
                problems.append(f"{b.where}: not-run without a reason")
            continue
        if b.run_by is not None:
            test = REPO / b.run_by
            if not test.is_file():
                problems.append(f"{b.where}: run-by {b.run_by}: no such test")
            elif b.run_by != RUN_BY_LABS and b.doc not in test.read_text():
                problems.append(f"{b.where}: {b.run_by} does not read {b.doc}")
            continue
        cmds = b.commands()
        if not cmds:
            problems.append(f"{b.where}: empty sh block")
        if any(c.startswith("sudo ") for c in cmds) and not b.as_root:
            problems.append(f"{b.where}: mixes sudo and user commands (split the block)")
    assert not problems, "\n".join(problems)


def test_lab_guide_blocks_are_launch_lines() -> None:
    bad = [b.where for b in shell_blocks() if b.run_by == RUN_BY_LABS
           and not all("-m topologies." in c for c in b.commands())]
    assert not bad, f"sh blocks in lab guides that test_labs.py does not run: {bad}"


def test_no_untagged_block_looks_like_commands() -> None:
    bad = [b.where for b in all_blocks() if not b.tag
           and any(LOOKS_LIKE_COMMAND.match(line) for line in b.body)]
    assert not bad, f"tag these blocks sh (run) or text (output): {bad}"


def test_readme_is_a_front_page() -> None:
    readme = (REPO / "README.md").read_text()
    assert len(readme) < 9000, f"README.md has {len(readme)} characters"
    for page in ("docs/experiments.md", "docs/network.md", "docs/attacks-defenses.md",
                 "docs/troubleshooting.md", "docs/architecture.md", "docs/labs/README.md"):
        assert f"]({page})" in readme, f"README does not link {page}"
        assert (REPO / page).is_file(), page


def test_few_commands_are_left_unrun() -> None:
    blocks = shell_blocks()
    not_run = [b.where for b in blocks if b.not_run is not None]
    assert len(not_run) <= len(blocks) // 2, f"most commands are not run: {not_run}"
