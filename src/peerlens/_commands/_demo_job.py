"""The demo job (grows with each capability)."""

from __future__ import annotations


def run_demo() -> None:
    """Score the bundled example dataset and print a summary table."""
    print("peerlens demo: nothing yet")
