"""A Sphinx directive for the API reference: ``remaining-public-names``.

The reference pages place each public name by hand, under the heading
where a reader looks for it.  This directive, at the end of a page, adds an
autodoc entry for every name in the module's ``__all__`` that the page has
not documented yet, so that a name added to the package appears in the
reference even before someone gives it a place.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles


def _directive_for(obj: Any) -> str:
    if inspect.isclass(obj):
        return "autoexception" if issubclass(obj, BaseException) else "autoclass"
    if callable(obj):
        return "autofunction"
    return "autodata"


class RemainingPublicNames(SphinxDirective):
    """``.. remaining-public-names:: MODULE``: document what this page has
    not documented of ``MODULE.__all__``, under an "Other names" rubric."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        name = self.arguments[0]
        module = importlib.import_module(name)
        objects = self.env.get_domain("py").objects  # type: ignore[attr-defined]
        here = {full for full, entry in objects.items() if entry.docname == self.env.docname}
        missing = [n for n in module.__all__ if f"{name}.{n}" not in here]
        if not missing:
            return []
        lines = [".. rubric:: Other names", ""]
        for member in missing:
            directive = _directive_for(getattr(module, member))
            lines.append(f".. {directive}:: {name}.{member}")
            if directive == "autoclass":
                lines.append("   :members:")
            lines.append("")
        node = nodes.section()
        node.document = self.state.document
        nested_parse_with_titles(
            self.state, StringList(lines, source=self.get_source_info()[0]), node
        )
        return node.children


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("remaining-public-names", RemainingPublicNames)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
