"""Sphinx configuration for pystream's documentation site.

The guides are the Markdown files beside this one (read by MyST); the API
reference (``reference/``) is generated from the docstrings of the public
modules.  Build it with warnings as errors, as ``tests/test_docs_site.py``
does:

    .venv/bin/python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

import os
import sys

# The site's own extension.  pystream itself is imported from the
# environment (in .venv, an editable install of this checkout).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "_ext"))

from pystream import __version__  # noqa: E402

project = "pystream"
author = "the pystream authors"
copyright = "the pystream authors"
version = release = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "public_api",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_ext"]

# Docstrings: Google-style sections (Raises:, and Cancellation: for what a
# cancelled call did); ``double backquotes`` for code, as everywhere in the
# package.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_custom_sections = ["Cancellation"]
autodoc_member_order = "bysource"
autodoc_typehints = "signature"

myst_heading_anchors = 3

html_theme = "alabaster"
html_title = f"pystream {release}"
html_theme_options = {"description": "One awaitable Stream per connection for asyncio"}
html_show_sourcelink = False
html_copy_source = False
