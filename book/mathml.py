"""A Sphinx math renderer that writes MathML into the page (docutils' LaTeX converter), so that formulas need no
script: Sphinx's default, MathJax, loads from a CDN, and the book must work offline. Browsers render MathML
natively (Chromium since 109, Firefox, Safari). A formula the converter cannot read is shown as its LaTeX
source, with a warning that names the page."""

from __future__ import annotations

import html

from docutils import nodes
from docutils.utils.math import latex2mathml
from sphinx.util import logging

logger = logging.getLogger(__name__)


def _mathml(node, latex: str, block: bool) -> str:
    try:
        return latex2mathml.tex2mathml(latex, as_block=block)
    except Exception as err:  # noqa: BLE001 - any unreadable formula is shown as LaTeX, and said
        logger.warning("formula not converted to MathML (%s): %s", err, latex, location=node)
        return f"<code class='math-source'>{html.escape(latex)}</code>"


def visit_math(self, node) -> None:
    self.body.append(f"<span class='math notranslate'>{_mathml(node, node.astext(), False)}</span>")
    raise nodes.SkipNode


def visit_displaymath(self, node) -> None:
    self.body.append(self.starttag(node, "div", CLASS="math notranslate"))
    if node.get("number"):
        self.body.append(f"<span class='eqno'>({html.escape(str(node['number']))})</span>")
    latex = node["latex"] if node.get("nowrap") else node.astext()
    self.body.append(_mathml(node, latex, True) + "</div>\n")
    raise nodes.SkipNode


def setup(app):
    app.add_html_math_renderer("mathml", (visit_math, None), (visit_displaymath, None))
    return {"parallel_read_safe": True, "parallel_write_safe": True}
