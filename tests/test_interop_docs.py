"""Every complete program in docs/interop.md runs and prints what it
should."""

from __future__ import annotations

import subprocess
import sys

import pytest

from helpers import exit_report
from test_docs import programs

PROGRAMS = programs("interop.md")
EXPECTED = [
    "200 hello\n",
    "closed with 1000\n",
    "b'one line\\n' b'more'\n",
]


def test_the_page_has_its_programs():
    assert len(PROGRAMS) == len(EXPECTED)


@pytest.mark.parametrize("index", range(len(EXPECTED)))
def test_interop_doc_program_runs(index, tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", PROGRAMS[index]],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, f"interop.md program {index}: {exit_report(done)}"
    assert done.stdout == EXPECTED[index]
