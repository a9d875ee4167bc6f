"""Shared fixtures of the analysis tests: running the R reference fits (R with lme4 and lmerTest:
CI installs it; locally a test skips without it, and fails when CI is set), and one simulated
trial stored through the study API, shared by the report and export tests (built once per
session: storing it takes a few seconds)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from peerlens.study import (
    AnalysisDataset,
    HrvTable,
    Store,
    analysis_dataset,
    bootstrap_admin,
    hrv_table,
)

from ..conftest import ADMIN, PASSWORD, VAULT_KEY
from ._hrv_trial import HrvTrial, add_hrv
from ._trial import Trial, make_trial

HERE = Path(__file__).parent


def _rscript() -> str:
    found = shutil.which("Rscript")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but Rscript is not installed: .ci/run installs r-cran-lmertest")
        pytest.skip("R with lme4 and lmerTest is not installed (Debian: r-cran-lmertest)")
    return found


@pytest.fixture
def run_r() -> Callable[..., list[list[str]]]:
    """``run_r("script.R", *args)``: run a script of this folder, return its tab-separated
    output lines split into fields."""

    def run(script: str, *args: str) -> list[list[str]]:
        cmd = [_rscript(), str(HERE / script), *args]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)
        assert done.returncode == 0, done.stderr
        return [line.split("\t") for line in done.stdout.splitlines() if line]

    return run


def _refit_nested_in_r(
    fit: object, run_r: Callable[..., list[list[str]]], tmp_path: Path
) -> dict[str, object]:
    """The same design refitted by lme4: ``(0 + d | worker) + (1 | participant)``."""
    terms = [f"c{k}" for k in range(len(fit.terms))]  # type: ignore[attr-defined]
    frame = pd.DataFrame(fit.design, columns=terms)  # type: ignore[attr-defined]
    data = fit.data  # type: ignore[attr-defined]
    frame.insert(0, "d", data["d"].to_numpy())
    frame.insert(0, "worker", data["worker"].fillna("none").to_numpy())
    frame.insert(0, "participant", data["participant"].to_numpy())
    frame.insert(0, "y", data[fit.outcome].to_numpy())  # type: ignore[attr-defined]
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False, float_format="%.17g")
    out: dict[str, object] = {"fixed": {}, "vc": {}}
    for kind, *rest in run_r(
        "lmer_fit.R", str(path), ",".join(terms), "(0 + d | worker) + (1 | participant)"
    ):
        if kind == "fixed":
            out["fixed"][rest[0]] = tuple(map(float, rest[1:]))  # type: ignore[index]
        elif kind == "vc":
            out["vc"][rest[0]] = float(rest[3])  # type: ignore[index]
        else:
            out[kind] = rest[0]
    return out


def _assert_matches_r(fit: object, r: dict[str, object]) -> None:
    fixed_r = r["fixed"]
    assert isinstance(fixed_r, dict)
    for k, fe in enumerate(fit.fixed):  # type: ignore[attr-defined]
        est, se, df = fixed_r[f"c{k}"]
        assert abs(fe.estimate - est) <= 1e-4 * max(abs(est), se), fe.term
        assert fe.se == pytest.approx(se, rel=1e-4), fe.term
        assert fe.df == pytest.approx(df, rel=1e-3), fe.term
    vc = r["vc"]
    assert isinstance(vc, dict)
    variance = fit.variance  # type: ignore[attr-defined]
    # A variance at its boundary is 0 here and about 1e-14 in lme4: absolute there.
    tiny = 1e-8 * vc["Residual"]
    assert variance["worker"] == pytest.approx(vc["worker"], rel=1e-4, abs=tiny)
    assert variance["participant_intercept"] == pytest.approx(vc["participant"], rel=1e-4, abs=tiny)
    assert variance["residual"] == pytest.approx(vc["Residual"], rel=1e-4)
    assert fit.loglik == pytest.approx(float(str(r["loglik"])), rel=1e-4)  # type: ignore[attr-defined]


@pytest.fixture
def check_nested_against_r(
    run_r: Callable[..., list[list[str]]],
) -> Callable[[object, Path], None]:
    """Refit a partially nested fit (its own design columns, ``d`` and ``worker``) with lme4 and
    hold fixed effects, SEs and variances to 1e-4, df to 1e-3, log-likelihood to 1e-4."""

    def check(fit: object, tmp_path: Path) -> None:
        _assert_matches_r(fit, _refit_nested_in_r(fit, run_r, tmp_path))

    return check


@pytest.fixture(scope="session")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Trial]]:
    """A SQLite store with study ``trial`` (40 participants, see :func:`make_trial`)."""
    tmp = tmp_path_factory.mktemp("trial")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PEERLENS_VAULT_KEY", VAULT_KEY)
        store = Store.open(f"sqlite:///{tmp / 'study.db'}", create=True, blob_dir=tmp / "blobs")
        bootstrap_admin(store, ADMIN.username, PASSWORD)
        trial = make_trial(store, ADMIN, tmp, n=40)
        try:
            yield store, trial
        finally:
            store.close()


@pytest.fixture(scope="session")
def dataset(stored: tuple[Store, Trial]) -> AnalysisDataset:
    """The trial's analysis dataset, read as the admin."""
    return analysis_dataset(stored[0], "trial", caller=ADMIN)


@pytest.fixture(scope="session")
def worker_dataset(tmp_path_factory: pytest.TempPathFactory) -> AnalysisDataset:
    """The analysis dataset of a 48-participant trial whose peer-support participants are
    shared among four PS workers, each with one analysed session transcript per participant
    (see :func:`make_trial` with ``workers``)."""
    tmp = tmp_path_factory.mktemp("worker_trial")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PEERLENS_VAULT_KEY", VAULT_KEY)
        store = Store.open(f"sqlite:///{tmp / 'study.db'}", create=True, blob_dir=tmp / "blobs")
        try:
            bootstrap_admin(store, ADMIN.username, PASSWORD)
            make_trial(store, ADMIN, tmp, n=48, seed=11, workers=4)
            return analysis_dataset(store, "trial", caller=ADMIN)
        finally:
            store.close()


@pytest.fixture(scope="session")
def hrv_stored(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Store, Trial, HrvTrial]]:
    """A SQLite store with study ``trial`` (24 participants) and RR recordings with HRV derived
    (see :func:`add_hrv`)."""
    tmp = tmp_path_factory.mktemp("hrv_trial")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PEERLENS_VAULT_KEY", VAULT_KEY)
        store = Store.open(f"sqlite:///{tmp / 'study.db'}", create=True, blob_dir=tmp / "blobs")
        bootstrap_admin(store, ADMIN.username, PASSWORD)
        trial = make_trial(store, ADMIN, tmp, n=24)
        codes = sorted(trial.items["participant"].unique())
        hrv = add_hrv(store, ADMIN, tmp, codes)
        try:
            yield store, trial, hrv
        finally:
            store.close()


@pytest.fixture(scope="session")
def hrv_data(hrv_stored: tuple[Store, Trial, HrvTrial]) -> tuple[AnalysisDataset, HrvTable]:
    """The HRV trial's analysis dataset and HRV table, read as the admin."""
    store = hrv_stored[0]
    return analysis_dataset(store, "trial", caller=ADMIN), hrv_table(store, "trial", caller=ADMIN)
