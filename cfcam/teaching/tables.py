"""Tables the notebooks show as rendered Markdown that fits a notebook's width (at a laptop's 1366 px), instead
of wide plain text that wraps mid-word: long names get break points, numbers stay short."""

from __future__ import annotations

__all__ = ["breakable", "breakable_header", "claims_table", "tables_by_category"]


def breakable(name: str) -> str:
    """``name`` with a break opportunity (``<wbr>``) after each underscore, ``@`` and ``/``, so a long metric
    name can wrap inside its column instead of widening the table."""
    for ch in "_@/":
        name = name.replace(ch, ch + "<wbr>")
    return name


def claims_table(summary, claims, methods) -> str:
    """A Markdown table: one row per ``(claim, metric)``, one column per method, each cell ``mean (n)`` from
    ``summary`` (rows ``(method, metric, mean, ci_low, ci_high, n)``); "n/a" where a method has no value."""
    by = {(r[0], r[1]): r for r in summary}
    lines = ["| claim | metric | " + " | ".join(methods) + " |", "|---|---|" + "---:|" * len(methods)]
    for claim, metric in claims:
        cells = []
        for m in methods:
            r = by.get((m, metric))
            cells.append(f"{r[2]:.3f} ({r[5]})" if r and r[5] else "n/a")
        lines.append(f"| {claim} | {breakable(metric)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def breakable_header(markdown: str) -> str:
    """A Markdown table with :func:`breakable` column names in its first line (the cells are left as they are)."""
    head, sep, rest = markdown.partition("\n")
    return breakable(head) + sep + rest


def tables_by_category(summary, metrics=None) -> list[tuple[str, str]]:
    """The full table (:func:`cfcam.evaluation.report.markdown_table`, the headline metrics by default) cut
    into one Markdown table per metric category (localisation, faithfulness, sanity, robustness, then the rest),
    ``[(category, table)]``: a dozen methods by twenty metrics is about 1800 px wide, too wide for any notebook;
    one category's few columns fit."""
    from ..evaluation import registry
    from ..evaluation.report import markdown_table

    metrics = registry.headline() if metrics is None else list(metrics)
    groups: dict[str, list[str]] = {}
    for m in metrics:
        metric = registry.get(m)
        category = metric.category if metric is not None else "other"
        if category not in ("localisation", "faithfulness", "sanity", "robustness"):
            category = "complexity and cost"
        groups.setdefault(category, []).append(m)
    return [(c, breakable_header(markdown_table(summary, ms))) for c, ms in groups.items()]
