"""Report figures as inline SVG text, drawn with matplotlib's SVG backend.

The SVG is reproducible byte for byte: no date in the metadata, element ids from a fixed salt
(``svg.hashsalt``), and text kept as text (``svg.fonttype = "none"``) so that the figure does
not depend on the fonts installed.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import pandas as pd

__all__ = ["means_plot"]

#: Colour-blind-safe colours (Okabe & Ito 2008), one per arm in order.
_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")
_MARKERS = ("o", "s", "^", "D", "v", "P")


def means_plot(
    means: pd.DataFrame, *, outcome: str, arms: Sequence[str], timepoints: Sequence[str]
) -> str:
    """Model-based means with 95 % CIs per arm over the timepoints, as an SVG document.

    Parameters
    ----------
    means
        ``arm``, ``timepoint``, ``mean``, ``ci_low``, ``ci_high``
        (:attr:`~peerlens.analysis.mixed.MixedModelFit.means`).
    outcome
        Axis label.
    arms, timepoints
        Orders (arms are dodged sideways so that intervals do not overlap).

    Returns
    -------
    str
        ``<svg ...>...</svg>`` without the XML prolog, ready to inline in HTML.

    Examples
    --------
    >>> m = pd.DataFrame({"arm": ["A", "A"], "timepoint": ["t0", "t1"], "mean": [1.0, 2.0],
    ...                   "ci_low": [0.5, 1.5], "ci_high": [1.5, 2.5]})
    >>> means_plot(m, outcome="y", arms=["A"], timepoints=["t0", "t1"]).startswith("<svg")
    True
    """
    import matplotlib as mpl
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    with mpl.rc_context(
        {
            "svg.hashsalt": "peerlens-report",
            "svg.fonttype": "none",
            "font.size": 9,
            "text.parse_math": False,
        }  # arm names are text: "$...$" is not math
    ):
        fig = Figure(figsize=(5.2, 3.0))
        FigureCanvasSVG(fig)
        ax = fig.add_subplot()
        width = 0.08 * (len(arms) - 1)
        for k, a in enumerate(arms):
            rows = means[means["arm"] == a].set_index("timepoint").reindex(list(timepoints))
            x = [i - width / 2 + (width * k / max(len(arms) - 1, 1)) for i in range(len(rows))]
            y = rows["mean"].to_numpy(dtype=float)
            err = [y - rows["ci_low"].to_numpy(dtype=float), rows["ci_high"].to_numpy() - y]
            ax.errorbar(
                x,
                y,
                yerr=err,
                label=str(a),
                color=_COLOURS[k % len(_COLOURS)],
                marker=_MARKERS[k % len(_MARKERS)],
                capsize=3,
                linewidth=1.4,
            )
        ax.set_xticks(range(len(timepoints)), [str(t) for t in timepoints])
        ax.set_ylabel(f"{outcome} (model-based mean, 95 % CI)")
        ax.spines[["top", "right"]].set_visible(False)
        ax.legend(frameon=False)
        fig.tight_layout()
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    return text[text.index("<svg") :]
