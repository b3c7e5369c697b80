"""One row per claim of a paper, checked against what was run: the shared format of every claims
section (``cocoa bench claims``, the coala and training reports) and of ``claims.json``.

A row: ``claim`` (one sentence), ``paper``, ``where`` (figure or section), ``setting`` (what ran
here), ``measured`` (with its uncertainty: standard error over seeds, or exact), ``threshold``,
``status`` ("pass", "fail" or "not run"), ``docs`` (the page that discusses it) and, for rows not
run, ``command`` (how to run them).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

COCOA_PAPER = "Meulemans, Schug, Kobayashi, Daw, Wayne, NeurIPS 2023 (arXiv 2306.16803)"
COALA_PAPER = "Meulemans, Kobayashi, von Oswald et al., ICLR 2025 (arXiv 2410.18636)"
STATUSES = ("pass", "fail", "not run")


class Missing(LookupError):
    """A run or measurement that a claim needs is not among the results."""


def row(claim: str, paper: str, where: str, setting: str, threshold: str, docs: str,
        measure: Callable[[], tuple[str, bool]], command: str = "") -> dict:
    """The claim's row: ``measure()`` -> (measured text with its uncertainty, passed?), or raises
    ``Missing`` (then "not run", with ``command``)."""
    try:
        measured, passed = measure()
        status = "pass" if passed else "fail"
    except Missing as missing:
        measured, status = f"not run ({missing})" if str(missing) else "not run", "not run"
    return {"claim": claim, "paper": paper, "where": where, "setting": setting, "measured": measured,
            "threshold": threshold, "status": status, "docs": docs, "command": command if status == "not run" else ""}


def _link(docs: str, out_dir) -> str:
    """A link to the docs page from a report in ``out_dir``: relative to the checkout the package
    runs from when its docs are there, else the page's path in the repository."""
    page = Path(__file__).resolve().parents[1] / docs
    target = os.path.relpath(page, Path(out_dir).resolve()) if page.is_file() else docs
    return f"[{docs}]({target})"


def markdown(rows: list[dict], out_dir) -> list[str]:
    """The rows as a markdown table for a report in ``out_dir``, with a tally."""
    counts = {status: sum(r["status"] == status for r in rows) for status in STATUSES}
    lines = [f"{counts['pass']} pass, {counts['fail']} fail, {counts['not run']} not run.", "",
             "| claim | paper, where | setting | measured | threshold | status | discussed in |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        measured = r["measured"] + (f"; run it: `{r['command']}`" if r["command"] else "")
        status = r["status"].upper() if r["status"] == "fail" else r["status"]
        lines.append(f"| {r['claim']} | {r['paper']}, {r['where']} | {r['setting']} | {measured} | {r['threshold']} | "
                     f"**{status}** | {_link(r['docs'], out_dir)} |")
    return lines
