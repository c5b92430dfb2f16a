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
