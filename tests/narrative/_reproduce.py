"""One check, used by the model and CLI tests: a fresh training reproduces the shipped model.

Not to the last bit: the embeddings and the solver's sums differ in their last bits from one CPU
(or BLAS kernel) to another.  The fit runs to ``ModelConfig.tol`` = 1e-8, where 3e-7 of noise
on the embeddings moved coefficients by 2e-5 and probabilities by 1e-5
(``benchmarks/story_fit_stability.py``; ``docs/story.md``, "Reproducible fits"); the bounds
below leave ample room for that and would still catch a fit stopped early (at scikit-learn's
default tolerance the same noise moved coefficients by 0.28 and probabilities by 0.22).
"""

from __future__ import annotations

import numpy as np

from peerlens.narrative.devcorpus import DevCorpusPaths, load_dev_corpus
from peerlens.narrative.model import TextModel

#: Largest difference allowed in any class probability of a real sentence, and in a threshold.
PROBABILITY_ATOL = 1e-3
#: Largest difference allowed in a coefficient or intercept.
COEF_ATOL = 1e-2


def assert_reproduces(fresh: TextModel, shipped: TextModel, dev: DevCorpusPaths) -> None:
    """Fail unless ``fresh`` is the shipped model up to the machine's last bits.

    Exact: classes, configuration, vocabularies and idf.  Within the bounds above: the
    coefficients, the comparison thresholds, and every class probability of the real
    sentences the model was trained on (with their neighbours).
    """
    assert fresh.classes == shipped.classes
    assert fresh.config == shipped.config
    np.testing.assert_array_equal(fresh.word.terms, shipped.word.terms)
    np.testing.assert_array_equal(fresh.char.terms, shipped.char.terms)
    np.testing.assert_allclose(fresh.word.idf, shipped.word.idf, rtol=1e-12)
    np.testing.assert_allclose(fresh.char.idf, shipped.char.idf, rtol=1e-12)
    np.testing.assert_allclose(fresh.coef, shipped.coef, atol=COEF_ATOL, rtol=0)
    np.testing.assert_allclose(fresh.intercept, shipped.intercept, atol=COEF_ATOL, rtol=0)
    assert fresh.thresholds.keys() == shipped.thresholds.keys()
    for cls, t in shipped.thresholds.items():
        f = fresh.thresholds[cls]
        assert (t is None) == (f is None), cls
        if t is not None and f is not None:
            assert abs(t - f) <= PROBABILITY_ATOL, (cls, t, f)
    batches = tuple(int(str(b)) for b in shipped.meta["real_batches"])
    real = load_dev_corpus(dev, batches)
    args = (real["text"].tolist(), real["prev"].tolist(), real["next"].tolist())
    np.testing.assert_allclose(
        fresh.predict_proba(*args), shipped.predict_proba(*args), atol=PROBABILITY_ATOL, rtol=0
    )
