"""Self-contained, accessible HTML report of a :class:`~peerlens.narrative.StoryAnalysis`.

Labels are shown by text and icon as well as colour and border style; every comparison sentence's
hint is in the page as text (read by screen readers, tied to its sentence by
``aria-describedby``, printed in full) and can be folded away on screen, then shown on hover or
keyboard focus; sentences that are not English are listed apart, unlabelled; all user text is
HTML-escaped (Jinja2 autoescaping).  No external assets and no script: styles are inline.
"""

from __future__ import annotations

import math
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from peerlens.narrative.corpus import LABELS

if TYPE_CHECKING:
    import jinja2

    from peerlens.narrative.analysis import StoryAnalysis

__all__ = ["LABEL_ICONS", "LABEL_NAMES", "render_html"]

LABEL_NAMES = {
    "connection": "Connection",
    "upward": "Upward comparison",
    "downward": "Downward comparison",
    "neutral": "Neutral",
}
LABEL_ICONS = {
    "connection": "\u25c6",
    "upward": "\u25b2",
    "downward": "\u25bc",
    "neutral": "\u25cb",
}
_ORDER = ("connection", "upward", "downward", "neutral")


@cache
def _template() -> jinja2.Template:
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    text = resources.files("peerlens.narrative").joinpath("data/report.html").read_text("utf-8")
    return env.from_string(text)


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.0%}"


def render_html(result: StoryAnalysis, title: str | None = None) -> str:
    """Render the analysis as one self-contained HTML page (summary first, then sentences).

    Examples
    --------
    >>> from peerlens.narrative import analyze
    >>> page = render_html(analyze("I felt that too. <b>At least</b> you have a job."))
    >>> "&lt;b&gt;" in page and "<b>At" not in page
    True
    """
    summary = result.summary
    assert set(LABELS) == set(_ORDER)
    rows = [
        {
            "label": k,
            "name": LABEL_NAMES[k],
            "icon": LABEL_ICONS[k],
            "count": summary.counts[k],
            "share": _pct(summary.shares[k]),
            "width": 0.0 if math.isnan(summary.shares[k]) else round(12 * summary.shares[k], 2),
        }
        for k in _ORDER
    ]
    ci = ""
    if not math.isnan(summary.ci_low):
        ci = f"{summary.ci_low:.2f} to {summary.ci_high:.2f}"
    level = f"{summary.ci_level:.0%} CI"
    ci_method = {
        "bootstrap": "bootstrap over sentences",
        "wilson": "Wilson interval: too few sentences for a bootstrap",
    }.get(summary.ci_method, "")
    index = "n/a (no connection or comparison sentences)"
    if not math.isnan(summary.connection_index):
        index = f"{summary.connection_index:.2f}"
    sentences: list[dict[str, Any]] = [
        {
            "label": s.label,
            "name": LABEL_NAMES[s.label],
            "icon": LABEL_ICONS[s.label],
            "text": s.text,
            "speaker": s.speaker,
            "confidence": f"{s.confidence:.2f}",
            "cues": list(s.cues),
            "hint": s.hint,
            "mixed": s.mixed,
        }
        for s in result.sentences
    ]
    return _template().render(
        title=title or result.source,
        source=result.source,
        speaker=result.speaker,
        speakers=list(result.speakers),
        index=index,
        ci=ci,
        n=summary.n_sentences,
        rows=rows,
        sentences=sentences,
        ci_level=level,
        ci_method=ci_method,
        model_version=result.model_version,
        unsupported=[
            {
                "text": u.text,
                "speaker": u.speaker,
                "language": u.language,
                "lang": u.code if u.code != "non-latin" else "",
            }
            for u in result.unsupported
        ],
    )
