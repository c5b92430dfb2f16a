"""The documentation site (docs/conf.py: Sphinx and MyST, the API reference
generated from the docstrings) builds with warnings as errors.

The docs tools come with the ``docs`` extra, which scripts/bootstrap
installs into the checkout's .venv on CPython: there a missing tool is a
failure.  The other environments (PyPy, the other CPythons, the sanitized
build, tox) install only the test extra, and skip this test.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import re
import subprocess
import sys

import pytest

import pystream
import pystream.abc
import pystream.interop
import pystream.testing

from helpers import exit_report

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")

MODULES = {
    "pystream": pystream,
    "abc": pystream.abc,
    "testing": pystream.testing,
    "interop": pystream.interop,
}


def _in_main_environment() -> bool:
    main = os.path.join(ROOT, ".venv")
    return os.path.realpath(sys.prefix) == os.path.realpath(main)


def _require_docs_tools() -> None:
    if platform.python_implementation() != "CPython":
        pytest.skip("the docs site is built on CPython")
    missing = [m for m in ("sphinx", "myst_parser") if importlib.util.find_spec(m) is None]
    if not missing:
        return
    if _in_main_environment():
        pytest.fail(f"{', '.join(missing)} missing from .venv: run scripts/bootstrap")
    pytest.skip("the docs extra is not installed in this environment")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Build the site once, into a temporary directory; return its path."""
    _require_docs_tools()
    out = tmp_path_factory.mktemp("docs-site")
    html = os.path.join(out, "html")
    # Python's own warnings (dev mode, PYTHONWARNINGS) are not the site's:
    # -W makes every Sphinx, MyST and docutils warning an error.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDEVMODE", "PYTHONWARNINGS")}
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-E", "-q", "-b", "html"]
    command += ["-d", os.path.join(out, "doctrees"), DOCS, html]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=out, env=env)
    assert done.returncode == 0, f"the docs site failed to build: {exit_report(done)}"
    assert "WARNING" not in done.stderr, done.stderr
    return html


def test_the_site_builds_without_warnings(site: str) -> None:
    guides = [name[:-3] for name in os.listdir(DOCS) if name.endswith(".md")]
    for page in guides + [f"reference/{name}" for name in MODULES]:
        assert os.path.exists(os.path.join(site, f"{page}.html")), f"no page for {page}"


@pytest.mark.parametrize("page", sorted(MODULES))
def test_the_reference_has_every_public_name(site: str, page: str) -> None:
    module = MODULES[page]
    with open(os.path.join(site, "reference", f"{page}.html"), encoding="utf-8") as f:
        ids = set(re.findall(r'id="([\w.]+)"', f.read()))
    missing = [n for n in module.__all__ if f"{module.__name__}.{n}" not in ids]
    assert not missing, f"docs/reference/{page}.md does not document {missing}"
