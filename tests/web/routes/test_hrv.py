"""The HRV pages over HTTP: the recordings of a study, and one recording's windows and RR plot
(inline SVG drawn on the server); on SQLite and PostgreSQL."""

from __future__ import annotations

import math
import re
from pathlib import Path

from peerlens.study import add_recording, derive, derived_frame

from ..conftest import ADMIN, Site, signed_in


def test_a_recording_page_shows_windows_validity_and_the_rr_plot(
    site: Site, tmp_path: Path
) -> None:
    rr = tmp_path / "rr.txt"
    rr.write_text("\n".join(f"{800 + 40 * math.sin(i / 3):.3f}" for i in range(300)) + "\n")
    add_recording(
        site.store,
        "pilot",
        rr,
        participant="A1",
        kind="rr",
        windows=[("talk", 0, 120)],
        caller=ADMIN,
    )
    derive(site.store, "pilot", ["hrv"], caller=ADMIN)
    sha = str(derived_frame(site.store, "pilot", "hrv", caller=ADMIN)["recording"].iloc[0])
    client = signed_in(site)
    listing = client.get("/studies/pilot/hrv")
    assert listing.status_code == 200 and f"/studies/pilot/hrv/A1/{sha[:16]}" in listing.text
    page = client.get(f"/studies/pilot/hrv/A1/{sha[:16]}")
    assert page.status_code == 200
    assert '<th scope="row">whole</th>' in page.text and '<th scope="row">talk</th>' in page.text
    svg = re.search(r"<svg.*?</svg>", page.text, re.S)
    assert svg is not None and 'role="img"' in svg.group(0) and "<script" not in svg.group(0)
    points = re.findall(r'points="([^"]+)"', svg.group(0))
    assert sum(len(p.split()) for p in points) == 300  # one point per stored RR interval
    assert "style=" not in page.text  # the CSP allows no inline style


def test_an_unknown_recording_is_refused(site: Site) -> None:
    page = signed_in(site).get("/studies/pilot/hrv/A1/" + "0" * 16)
    assert page.status_code == 404 and "no recording" in page.text
