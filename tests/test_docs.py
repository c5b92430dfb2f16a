"""Every complete program in the docs runs and does what the text says."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from helpers import exit_report

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def programs(name):
    """The ```python blocks of docs/NAME that are whole programs (they call
    asyncio.run)."""
    with open(os.path.join(ROOT, "docs", name), encoding="utf-8") as f:
        blocks = re.findall(r"```python\n(.*?)```", f.read(), re.S)
    return [b for b in blocks if "asyncio.run(" in b]


DOC_PROGRAMS = [
    (name, i, code)
    for name in ("tutorial.md", "migration.md")
    for i, code in enumerate(programs(name))
]


def test_the_docs_have_programs():
    assert len(programs("tutorial.md")) == 4
    assert len(programs("migration.md")) >= 2


@pytest.mark.parametrize(
    "name, index, code", DOC_PROGRAMS, ids=[f"{n}-{i}" for n, i, _ in DOC_PROGRAMS]
)
def test_doc_program_runs(name, index, code, tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert done.returncode == 0, f"{name} program {index}: {exit_report(done)}"


def test_api_md_names_every_public_name_and_command():
    import pystream
    import pystream.abc
    import pystream.testing

    with open(os.path.join(ROOT, "docs", "api.md"), encoding="utf-8") as f:
        api = f.read()
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    for module in (pystream, pystream.abc, pystream.testing):
        missing = [n for n in module.__all__ if not re.search(rf"\b{re.escape(n)}\b", api)]
        assert not missing, f"docs/api.md does not name {module.__name__}'s {missing}"
    usage = subprocess.run(
        [sys.executable, "-m", "pystream", "--help"], capture_output=True, text=True, check=True
    ).stdout
    commands = re.search(r"\{([\w,-]+)\}", usage).group(1).split(",")
    assert "bench-sendfile" in commands
    flat_readme = " ".join(readme.split())  # (its lines wrap anywhere)
    for command in commands:
        assert command in api, f"docs/api.md does not name the command {command}"
        assert f"python -m pystream {command}" in flat_readme, (
            f"README.md does not show python -m pystream {command}"
        )
