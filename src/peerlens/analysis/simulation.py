"""A seeded simulator of a peer-support trial with a known truth, to check analyses against.

The trial: two arms (usual care, peer support) randomised within sites, three timepoints, PS
workers who each support the peer-support participants of their site, monotone dropout, item-level
questionnaires (SCS, FSCRS, DERS-16), a laboratory ECG with baseline (rest), session (task) and
recovery windows at the first and last ECG timepoint, and session transcripts of each PS worker.
:func:`simulate_trial` draws it from a :class:`TrialConfig`; :meth:`SimulatedTrial.write` writes
it as the files a study team would hold (study config, response tables, ECG recordings,
transcripts), ready to import through :mod:`peerlens.study`; :attr:`SimulatedTrial.truth` says
what the analyses should find.

The model
---------
Two latent variables per participant *i* and timepoint *t* (standardised units): ``m``, common
humanity (the mediator), and ``z``, emotional self-regulation::

    m_it = mu_m + p_i + c_t + PS_i * (a_t + g * (CI_w(i) - mean CI) * [t > 0]) + e_it
    z_it = mu_z + q_i + s_site + d_t + PS_i * (c'_t + u_w(i) * [t > 0]) + b * m_it + f_it

with participant intercepts ``p_i``, ``q_i``, residuals ``e``, ``f`` (independent normals), fixed
site offsets ``s``, the worker random effect ``u_w ~ N(0, worker_sd^2)`` in the peer-support arm
only (a partially nested design; Bauer, Sterba & Hallfors 2008), moderation of the effect on
common humanity by the worker's connection index ``CI_w`` (slope ``g``), the a path ``a_t``, the
b path ``b`` and the direct effect ``c'_t``. The arm x time effect on ``z`` at ``t`` is therefore
``c'_t + b * a_t`` and on ``m`` it is ``a_t``.

Each questionnaire subscale (a *facet*: one of the instrument's item scores, together covering
its items) has the target mean item value ``centre + coef_z * z + coef_m * m + specific noise``;
its items are integers on the response scale whose raw mean is that target rounded to the
nearest achievable value (raw: a negative subscale's items are written unreversed, so the
scoring engine's reverse keys turn them around in the total). Every item score of the instrument
is then linear in ``z`` and ``m`` up to rounding, and :meth:`TrialTruth.effect` gives its true
arm x time effect.

HRV: ``ln RMSSD`` at rest is ``mu + participant + noise``; the task window lowers it by the
reactivity (vagal withdrawal), less so in the peer-support arm at the last timepoint by
``reactivity_arm_effect``; recovery returns near rest. RR intervals with exactly that RMSSD per
window (respiratory and Mayer-wave rhythms plus noise, rescaled) are turned into a 250 Hz ECG by
:func:`peerlens.hrv.simulation.ecg_from_rr`.

Dropout is monotone and missing at random given the observed baseline ``scs_total``: within each
arm the configured share of participants is missing from each follow-up on, drawn without
replacement with odds ``exp(dropout_slope * standardised baseline scs_total)``.

Transcripts: each peer-support participant has ``transcripts_per_participant`` sessions; in each,
the worker says ``labelled_sentences`` connection or comparison sentences (connection ones in the
share ``CI_w``, the rest split between upward and downward comparisons) and some neutral ones,
drawn from a bank of project-written sentences, between the participant's turns.

References
----------
Bauer, D. J., Sterba, S. K., & Hallfors, D. D. (2008). Evaluating group-based interventions when
control participants are ungrouped. Multivariate Behavioral Research, 43(2), 210-236.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from peerlens.analysis import _session_sentences as bank
from peerlens.instruments import load_spec, score
from peerlens.instruments._spec import CompositeScore, InstrumentSpec, ItemScore

__all__ = [
    "FACETS",
    "HEADLINE_SCORES",
    "SimulatedTrial",
    "TrialConfig",
    "TrialTruth",
    "score_map",
    "simulate_trial",
]

#: Facet targets per instrument: item score -> (centre, coef_z, coef_m, specific SD), on the raw
#: item scale (mean item value). Negative subscales fall as self-regulation rises.
FACETS: dict[str, dict[str, tuple[float, float, float, float]]] = {
    "scs": {
        "scs_self_kindness": (3.0, 0.50, 0.10, 0.20),
        "scs_self_judgment": (3.1, -0.50, 0.0, 0.20),
        "scs_common_humanity": (3.0, 0.10, 0.60, 0.15),
        "scs_isolation": (3.1, -0.35, -0.35, 0.20),
        "scs_mindfulness": (3.1, 0.45, 0.10, 0.20),
        "scs_over_identification": (3.2, -0.45, 0.0, 0.20),
    },
    "fscrs": {
        "fscrs_inadequate_self": (2.0, -0.55, -0.10, 0.20),
        "fscrs_hated_self": (1.2, -0.40, 0.0, 0.15),
        "fscrs_reassured_self": (1.9, 0.50, 0.10, 0.20),
    },
    "ders16": {
        "ders16_clarity": (2.7, -0.55, 0.0, 0.25),
        "ders16_goals": (3.0, -0.50, 0.0, 0.25),
        "ders16_impulse": (2.6, -0.55, -0.05, 0.25),
        "ders16_strategies": (2.8, -0.60, -0.10, 0.20),
        "ders16_nonacceptance": (2.8, -0.50, -0.10, 0.25),
    },
}
#: The scores the demo reports, with their truth.
HEADLINE_SCORES = (
    "scs_total",
    "scs_common_humanity",
    "scs_isolation",
    "fscrs_inadequate_self",
    "fscrs_reassured_self",
    "ders16_total",
)
#: The lab ECG's windows: (label, start s, end s): a resting baseline, the task (a simulated
#: conversation with a peer, the "session" window) and recovery.
ECG_WINDOWS = (("baseline", 0.0, 120.0), ("session", 120.0, 240.0), ("recovery", 240.0, 360.0))
ECG_FS = 250.0
#: Mean RR (ms) in each window before the participant's own offset.
_WINDOW_RR = {"baseline": 860.0, "session": 780.0, "recovery": 880.0}
_SPEAKER_PARTICIPANT = "Participant"


@dataclass(frozen=True)
class TrialConfig:
    """Design and true parameters of a simulated trial (defaults: the demo trial).

    Effects are in standardised latent units (see the module docstring); tuples indexed by
    timepoint start with the baseline, whose effects are 0.
    """

    n_participants: int = 120
    sites: tuple[str, ...] = ("north", "central", "south")
    #: Control arm first: it is the reference level.
    arms: tuple[str, str] = ("usual_care", "peer_support")
    timepoints: tuple[str, ...] = ("baseline", "week6", "week12")
    timepoint_days: tuple[int, ...] = (0, 42, 84)
    #: The connection index each PS worker's session language is written to have; worker
    #: ``W01`` gets the first, and so on. Workers are spread over the sites in turn.
    worker_connection: tuple[float, ...] = (0.30, 0.40, 0.48, 0.56, 0.64, 0.72, 0.80, 0.90)
    participant_sd: float = 0.8
    residual_sd: float = 0.5
    site_offsets: tuple[float, ...] = (0.15, 0.0, -0.15)
    time_effect: tuple[float, ...] = (0.0, 0.05, 0.10)
    mediator_time_effect: tuple[float, ...] = (0.0, 0.0, 0.05)
    #: a path: peer support's effect on common humanity.
    mediator_arm_effect: tuple[float, ...] = (0.0, 0.35, 0.50)
    #: b path: self-regulation per unit of common humanity.
    mediator_to_outcome: float = 0.40
    #: c' path: peer support's effect on self-regulation not through common humanity.
    direct_effect: tuple[float, ...] = (0.0, 0.15, 0.25)
    worker_sd: float = 0.15
    #: Change in the effect on common humanity per unit of the worker's connection index.
    connection_moderation: float = 0.60
    #: Share of each arm missing from each timepoint on (monotone; baseline 0).
    dropout: Mapping[str, tuple[float, ...]] = field(
        default_factory=lambda: {"usual_care": (0.0, 0.10, 0.20), "peer_support": (0.0, 0.05, 0.12)}
    )
    #: Log-odds of dropping out per SD of observed baseline scs_total (negative: those with less
    #: self-compassion at baseline drop out more).
    dropout_slope: float = -0.6
    rest_ln_rmssd: float = float(np.log(38.0))
    rest_ln_rmssd_sd: float = 0.35
    #: Task minus rest, ln RMSSD.
    task_reactivity: float = -0.30
    #: Recovery minus rest, ln RMSSD.
    recovery_shift: float = 0.05
    #: Peer support's effect on task reactivity at the last ECG timepoint (less withdrawal).
    reactivity_arm_effect: float = 0.15
    window_sd: float = 0.06
    #: Timepoints with a lab ECG (empty: no recordings).
    ecg_timepoints: tuple[str, ...] = ("baseline", "week12")
    transcripts_per_participant: int = 2
    labelled_sentences: int = 14
    neutral_sentences: int = 5

    @property
    def workers(self) -> tuple[str, ...]:
        """The PS workers' pseudonyms."""
        return tuple(f"W{k + 1:02d}" for k in range(len(self.worker_connection)))


@dataclass(frozen=True)
class TrialTruth:
    """What the simulation put in: the values analyses of a simulated trial should recover.

    Attributes
    ----------
    arm_effects
        Per headline score and timepoint: peer support minus usual care in the change from
        baseline (the arm x timepoint interaction), in score units.
    worker_sd
        Per headline score: SD of the worker random effect (peer-support arm, follow-ups).
    mediator, a_path, b_path, direct_effect
        The mediator score and, in its and the outcomes' latent units, the a path per
        timepoint, the b path and the direct effect per timepoint.
    connection_moderation
        Change in the arm effect on the mediator score per unit of connection index, per score.
    worker_connection
        The connection index each worker's transcripts were written with.
    reactivity_arm_effect
        Peer support's effect on ln RMSSD task reactivity (task minus rest) at the last ECG
        timepoint; ``task_reactivity`` and ``recovery_shift`` are the usual-care values.
    dropout
        Share missing per arm and timepoint; ``dropout_slope`` the MAR log-odds per SD of
        observed baseline scs_total.
    """

    arm_effects: dict[str, dict[str, float]]
    worker_sd: dict[str, float]
    mediator: str
    a_path: dict[str, float]
    b_path: float
    direct_effect: dict[str, float]
    connection_moderation: dict[str, float]
    worker_connection: dict[str, float]
    task_reactivity: float
    recovery_shift: float
    reactivity_arm_effect: float
    dropout: dict[str, dict[str, float]]
    dropout_slope: float
    seed: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class SimulatedTrial:
    """A simulated trial: the data a study team would hold, and the truth behind it.

    Attributes
    ----------
    config, truth, seed
        What was simulated.
    participants
        One row per service user: ``participant``, ``arm``, ``site``, ``worker`` (the PS worker
        of a peer-support participant, else empty).
    workers
        One row per PS worker: ``worker``, ``site``.
    responses
        Item answers: one row per participant and timepoint attended, ``participant``,
        ``timepoint`` and every item column (``scs_1`` ...), integers on the response scale.
    latent
        Per participant and timepoint (attended or not): ``z``, ``m`` and ``intended_<score>``
        for every score linear in the items (the value before rounding to whole answers),
        ``observed`` (not dropped out).
    sessions
        Transcribed sessions: ``participant``, ``worker``, ``session``, ``started_at``,
        ``text`` (``Name: words`` lines).
    recordings
        Lab ECGs: ``participant``, ``timepoint``, ``recording`` (file name) and per window
        ``<window>_rmssd_ms`` (RMSSD of the realised intervals) and ``<window>_ln_rmssd``
        (the target); the signals come from :meth:`ecg` and are written by :meth:`write`.
    """

    config: TrialConfig
    truth: TrialTruth
    seed: int
    participants: pd.DataFrame
    workers: pd.DataFrame
    responses: pd.DataFrame
    latent: pd.DataFrame
    sessions: pd.DataFrame
    recordings: pd.DataFrame
    rr_ms: dict[str, NDArray[np.float64]] = field(repr=False)

    def ecg(self, recording: str) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
        """The ECG (mV, :data:`ECG_FS` Hz) of ``recording`` and its R-peak samples."""
        from peerlens.hrv.simulation import ecg_from_rr, noisy_ecg

        total = ECG_WINDOWS[-1][2] + 2.0
        clean, peaks = ecg_from_rr(self.rr_ms[recording], total, ECG_FS, first_s=0.5)
        seed = int(self.seed % 1_000_003 + sum(recording.encode()))
        return np.round(noisy_ecg(clean, ECG_FS, 30.0, "bw", seed=seed), 4), peaks

    def write(self, folder: str | Path) -> Path:
        """Write the trial as a study team's files into ``folder`` and return it.

        ``study.yaml`` (arms, sites, timepoints and their instruments), ``participants.csv``,
        ``workers.csv``, ``responses_<timepoint>.csv``, ``sessions.csv`` with
        ``transcripts/<participant>_<session>.txt``, ``recordings.csv`` with
        ``ecg/<recording>`` (one-channel EDF) and ``ecg_windows.csv``, and ``truth.json``.
        """
        import yaml

        out = Path(folder)
        (out / "transcripts").mkdir(parents=True, exist_ok=True)
        (out / "ecg").mkdir(exist_ok=True)
        cfg = self.config
        study = {
            "title": "Simulated peer-support trial (peerlens demo)",
            "arms": list(cfg.arms),
            "sites": list(cfg.sites),
            "timepoints": [
                {"name": tp, "offset_days": days, "instruments": list(FACETS)}
                for tp, days in zip(cfg.timepoints, cfg.timepoint_days, strict=True)
            ],
        }
        (out / "study.yaml").write_text(yaml.safe_dump(study, sort_keys=False), encoding="utf-8")
        self.participants.to_csv(out / "participants.csv", index=False)
        self.workers.to_csv(out / "workers.csv", index=False)
        for tp in cfg.timepoints:
            rows = self.responses[self.responses["timepoint"] == tp].drop(columns="timepoint")
            rows.to_csv(out / f"responses_{tp}.csv", index=False)
        files = []
        for row in self.sessions.itertuples():
            name = f"transcripts/{row.participant}_{row.session}.txt"
            (out / name).write_text(str(row.text), encoding="utf-8")
            files.append(name)
        self.sessions.drop(columns="text").assign(transcript=files).to_csv(
            out / "sessions.csv", index=False
        )
        for name in self.recordings["recording"]:
            _write_edf(out / "ecg" / str(name), self.ecg(str(name))[0])
        self.recordings[["participant", "timepoint", "recording"]].to_csv(
            out / "recordings.csv", index=False
        )
        windows = pd.DataFrame(ECG_WINDOWS, columns=["label", "start", "end"])
        windows.to_csv(out / "ecg_windows.csv", index=False)
        (out / "truth.json").write_text(
            json.dumps(self.truth.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        return out


def _write_edf(path: Path, ecg: NDArray[np.float64]) -> None:
    from pyedflib import highlevel

    header = highlevel.make_header(
        recording_additional="peerlens simulated trial",
        patientcode="X",
        equipment="simulated",
        startdate=dt.datetime(2026, 1, 15, 9, 0, 0),
    )
    signal = highlevel.make_signal_header(
        "ECG", dimension="mV", sample_frequency=ECG_FS, physical_min=-5.0, physical_max=5.0
    )
    highlevel.write_edf(str(path), [ecg], [signal], header)


# --- the linear map from (z, m) to every item score ---------------------------------------------


def _item_facets(spec: InstrumentSpec) -> dict[int, str]:
    facets = FACETS[spec.id]
    out: dict[int, str] = {}
    for s in spec.scores:
        if isinstance(s, ItemScore) and s.name in facets and s.items != "all":
            out.update(dict.fromkeys(s.items, s.name))
    missing = sorted(set(range(1, spec.n_items + 1)) - set(out))
    if missing:  # the facet table must cover every item
        raise ValueError(f"{spec.id}: items {missing} belong to no simulated facet")
    return out


def score_map(spec: InstrumentSpec, name: str) -> dict[str, float]:
    """``name`` as a linear function of the facet values: ``{"": intercept, facet: weight}``.

    Item scores aggregate item values (reversed as ``min + max - x`` when keyed); a composite is
    the mean of its parts, the reversed ones as ``min + max - part``. Scores of other kinds
    (bands, flags, conversion tables) are not linear and raise ``KeyError``.
    """
    facet_of = _item_facets(spec)
    lo, hi = spec.response_min, spec.response_max
    for s in spec.scores:
        if s.name != name:
            continue
        if isinstance(s, ItemScore):
            items = list(range(1, spec.n_items + 1)) if s.items == "all" else list(s.items)
            w = 1.0 / len(items) if s.aggregate == "mean" else 1.0
            out: dict[str, float] = {"": 0.0}
            for item in items:
                f = facet_of[item]
                if s.keyed and item in spec.reverse_items:
                    out[""] += w * (lo + hi)
                    out[f] = out.get(f, 0.0) - w
                else:
                    out[f] = out.get(f, 0.0) + w
            return out
        if isinstance(s, CompositeScore):
            out = {"": 0.0}
            for part in s.of:
                sign = -1.0 if part in s.reverse else 1.0
                if sign < 0:
                    out[""] += (lo + hi) / len(s.of)
                for k, v in score_map(spec, part).items():
                    out[k] = out.get(k, 0.0) + sign * v / len(s.of)
            return out
    raise KeyError(f"{spec.id}: no linear score {name!r}")


def _linear_scores(spec: InstrumentSpec) -> list[str]:
    return [s.name for s in spec.scores if isinstance(s, ItemScore | CompositeScore)]


def _latent_coefficients(spec: InstrumentSpec, name: str) -> tuple[float, float, float]:
    """(intercept, coef_z, coef_m) of score ``name`` in the latent variables."""
    facets = FACETS[spec.id]
    mapping = score_map(spec, name)
    intercept, cz, cm = mapping[""], 0.0, 0.0
    for f, w in mapping.items():
        if f:
            centre, coef_z, coef_m, _sd = facets[f]
            intercept += w * centre
            cz += w * coef_z
            cm += w * coef_m
    return intercept, cz, cm


def _facet_items(spec: InstrumentSpec) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for item, f in sorted(_item_facets(spec).items()):
        out.setdefault(f, []).append(item)
    return out


# --- simulation ---------------------------------------------------------------------------------


def _truth(config: TrialConfig, seed: int) -> TrialTruth:
    tps = config.timepoints
    effects: dict[str, dict[str, float]] = {}
    worker_sd: dict[str, float] = {}
    moderation: dict[str, float] = {}
    for name in HEADLINE_SCORES:
        spec = load_spec(name.split("_", 1)[0])
        _i, cz, cm = _latent_coefficients(spec, name)
        effects[name] = {
            tp: cz * (config.direct_effect[t] + config.mediator_to_outcome * a) + cm * a
            for t, (tp, a) in enumerate(zip(tps, config.mediator_arm_effect, strict=True))
            if t > 0
        }
        worker_sd[name] = abs(cz) * config.worker_sd
        moderation[name] = (cm + cz * config.mediator_to_outcome) * config.connection_moderation
    return TrialTruth(
        arm_effects=effects,
        worker_sd=worker_sd,
        mediator="scs_common_humanity",
        a_path=dict(zip(tps, config.mediator_arm_effect, strict=True)),
        b_path=config.mediator_to_outcome,
        direct_effect=dict(zip(tps, config.direct_effect, strict=True)),
        connection_moderation=moderation,
        worker_connection=dict(zip(config.workers, config.worker_connection, strict=True)),
        task_reactivity=config.task_reactivity,
        recovery_shift=config.recovery_shift,
        reactivity_arm_effect=config.reactivity_arm_effect,
        dropout={a: dict(zip(tps, r, strict=True)) for a, r in config.dropout.items()},
        dropout_slope=config.dropout_slope,
        seed=seed,
    )


def _design(config: TrialConfig, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    n = config.n_participants
    sites = np.array([config.sites[k % len(config.sites)] for k in range(n)])
    arms = np.empty(n, dtype=object)
    for site in config.sites:  # permuted blocks of two within each site
        idx = np.flatnonzero(sites == site)
        for start in range(0, idx.size, 2):
            block = idx[start : start + 2]
            arms[block] = rng.permutation(np.array(config.arms, dtype=object))[: block.size]
    workers = pd.DataFrame(
        {
            "worker": config.workers,
            "site": [config.sites[k % len(config.sites)] for k in range(len(config.workers))],
        }
    )
    assigned = np.full(n, "", dtype=object)
    for site in config.sites:
        mine = workers.loc[workers["site"] == site, "worker"].to_list()
        ps = np.flatnonzero((sites == site) & (arms == config.arms[1]))
        for k, i in enumerate(ps):
            assigned[i] = mine[k % len(mine)]
    people = pd.DataFrame(
        {
            "participant": [f"P{k + 1:03d}" for k in range(n)],
            "arm": arms.astype(str),
            "site": sites,
            "worker": assigned.astype(str),
        }
    )
    return people, workers


def _items(
    spec: InstrumentSpec, targets: pd.DataFrame, rng: np.random.Generator
) -> dict[str, NDArray[np.int64]]:
    """Integer item answers whose raw facet means are the targets rounded to whole sums."""
    lo, hi = spec.response_min, spec.response_max
    out: dict[str, NDArray[np.int64]] = {}
    n = len(targets)
    for facet, items in _facet_items(spec).items():
        k = len(items)
        total = np.clip(np.rint(targets[facet].to_numpy() * k), k * lo, k * hi).astype(np.int64)
        base = total // k
        values = np.repeat(base[:, None], k, axis=1)
        extra = total - base * k
        order = np.argsort(rng.random((n, k)), axis=1)
        values += (order < extra[:, None]).astype(np.int64)
        # Spread within the facet without changing its sum: move one point between two items.
        for _ in range(k // 2):
            a, b = rng.integers(0, k, size=(2, n))
            rows = np.arange(n)
            ok = (a != b) & (values[rows, a] > lo) & (values[rows, b] < hi)
            ok &= rng.random(n) < 0.5
            values[rows[ok], a[ok]] -= 1
            values[rows[ok], b[ok]] += 1
        for j, item in enumerate(items):
            out[f"{spec.id}_{item}"] = values[:, j]
    return dict(sorted(out.items(), key=lambda kv: int(kv[0].rsplit("_", 1)[1])))


def _questionnaires(
    config: TrialConfig,
    people: pd.DataFrame,
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    n, tps = len(people), config.timepoints
    ps = (people["arm"] == config.arms[1]).to_numpy().astype(float)
    site_offset = people["site"].map(dict(zip(config.sites, config.site_offsets, strict=True)))
    ci = dict(zip(config.workers, config.worker_connection, strict=True))
    mean_ci = float(np.mean(config.worker_connection))
    ci_c = people["worker"].map(lambda w: ci.get(w, mean_ci) - mean_ci).to_numpy(float)
    u = dict(
        zip(config.workers, rng.normal(0.0, config.worker_sd, len(config.workers)), strict=True)
    )
    u_i = people["worker"].map(lambda w: u.get(w, 0.0)).to_numpy(float)
    p_i = rng.normal(0.0, config.participant_sd, n)
    q_i = rng.normal(0.0, config.participant_sd, n)
    frames = []
    for t, tp in enumerate(tps):
        later = float(t > 0)
        m = (
            p_i
            + config.mediator_time_effect[t]
            + ps * (config.mediator_arm_effect[t] + config.connection_moderation * ci_c * later)
            + rng.normal(0.0, config.residual_sd, n)
        )
        z = (
            q_i
            + site_offset.to_numpy(float)
            + config.time_effect[t]
            + ps * (config.direct_effect[t] + u_i * later)
            + config.mediator_to_outcome * m
            + rng.normal(0.0, config.residual_sd, n)
        )
        frames.append(
            pd.DataFrame({"participant": people["participant"], "timepoint": tp, "z": z, "m": m})
        )
    latent = pd.concat(frames, ignore_index=True)
    answers: dict[str, Any] = {}
    for inst, facets in FACETS.items():
        spec = load_spec(inst)
        targets = pd.DataFrame(
            {
                f: centre + cz * latent["z"] + cm * latent["m"] + rng.normal(0.0, sd, len(latent))
                for f, (centre, cz, cm, sd) in facets.items()
            }
        )
        answers.update(_items(spec, targets, rng))
        for name in _linear_scores(spec):
            mapping = score_map(spec, name)
            latent[f"intended_{name}"] = mapping[""] + sum(
                w * targets[f] for f, w in mapping.items() if f
            )
    responses = pd.concat([latent[["participant", "timepoint"]], pd.DataFrame(answers)], axis=1)
    return latent, responses


def _dropout(
    config: TrialConfig, people: pd.DataFrame, baseline: pd.Series, rng: np.random.Generator
) -> dict[str, int]:
    """Per participant: the index of the first timepoint missed (len(timepoints) if none)."""
    std = (baseline - baseline.mean()) / baseline.std(ddof=0)
    first_missed = dict.fromkeys(people["participant"], len(config.timepoints))
    for arm in config.arms:
        ids = people.loc[people["arm"] == arm, "participant"].to_numpy()
        rates = config.dropout[arm]
        # Weighted sampling without replacement (Gumbel top-k): odds exp(slope * baseline).
        keys = config.dropout_slope * std.loc[ids].to_numpy() + rng.gumbel(size=ids.size)
        order = ids[np.argsort(-keys, kind="stable")]
        for t in range(len(config.timepoints) - 1, 0, -1):
            for pid in order[: round(rates[t] * ids.size)]:
                first_missed[str(pid)] = t
    return first_missed


def _rr_window(
    rng: np.random.Generator, mean_rr: float, rmssd: float, seconds: float
) -> NDArray[np.float64]:
    n = int(seconds * 1000.0 / mean_rr) + 1
    t = np.cumsum(np.full(n, mean_rr / 1000.0))
    resp = np.sin(2 * np.pi * rng.uniform(0.2, 0.3) * t + rng.uniform(0, 6.28))
    mayer = 0.8 * np.sin(2 * np.pi * 0.1 * t + rng.uniform(0, 6.28))
    v = resp + mayer + rng.normal(0.0, 0.3, n)
    v -= v.mean()
    scale = rmssd / float(np.sqrt(np.mean(np.diff(v) ** 2)))
    rr = mean_rr + scale * v
    return rr[np.cumsum(rr) <= seconds * 1000.0 + 1e-9]


def _recordings(
    config: TrialConfig,
    people: pd.DataFrame,
    first_missed: dict[str, int],
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, dict[str, NDArray[np.float64]]]:
    rows = []
    series: dict[str, NDArray[np.float64]] = {}
    if not config.ecg_timepoints:
        return pd.DataFrame(columns=["participant", "timepoint", "recording"]), series
    last = config.ecg_timepoints[-1]
    person = rng.normal(0.0, config.rest_ln_rmssd_sd, len(people))
    hr_offset = rng.normal(0.0, 60.0, len(people))
    for k, row in enumerate(people.itertuples()):
        for tp in config.ecg_timepoints:
            t = config.timepoints.index(tp)
            if t >= first_missed[str(row.participant)]:
                continue
            rest = config.rest_ln_rmssd + person[k] + rng.normal(0.0, config.window_sd)
            react = config.task_reactivity
            if row.arm == config.arms[1] and tp == last and t > 0:
                react += config.reactivity_arm_effect
            target = {
                "baseline": rest,
                "session": rest + react + rng.normal(0.0, config.window_sd),
                "recovery": rest + config.recovery_shift + rng.normal(0.0, config.window_sd),
            }
            parts = []
            for label, start, end in ECG_WINDOWS:
                mean_rr = _WINDOW_RR[label] + hr_offset[k]
                parts.append(_rr_window(rng, mean_rr, float(np.exp(target[label])), end - start))
            # The beat joining two windows is kept, so each window's time adds up.
            rr = np.concatenate(parts)
            name = f"{row.participant}_{tp}.edf"
            series[name] = rr
            rec: dict[str, Any] = {
                "participant": row.participant,
                "timepoint": tp,
                "recording": name,
            }
            realised = _realised_rr(rr)
            beat_times = 0.5 + np.cumsum(np.concatenate(([0.0], realised))) / 1000.0
            for label, start, end in ECG_WINDOWS:
                inside = (beat_times[1:] > start) & (beat_times[:-1] >= start)
                inside &= beat_times[1:] <= end
                within = realised[inside]
                rec[f"{label}_rmssd_ms"] = float(np.sqrt(np.mean(np.diff(within) ** 2)))
                rec[f"{label}_ln_rmssd"] = float(target[label])
            rows.append(rec)
    return pd.DataFrame(rows), series


def _realised_rr(rr_ms: NDArray[np.float64]) -> NDArray[np.float64]:
    """The intervals after each R apex is rounded to a sample (what the ECG holds)."""
    samples = np.round((0.5 + np.concatenate(([0.0], np.cumsum(rr_ms))) / 1000.0) * ECG_FS)
    return np.diff(samples) * 1000.0 / ECG_FS


def _transcripts(
    config: TrialConfig,
    people: pd.DataFrame,
    first_missed: dict[str, int],
    rng: np.random.Generator,
) -> pd.DataFrame:
    ci = dict(zip(config.workers, config.worker_connection, strict=True))
    start = dt.datetime(2026, 1, 12, 10, 0, tzinfo=dt.UTC)
    rows = []
    ps = people[people["arm"] == config.arms[1]]
    for k, row in enumerate(ps.itertuples()):
        if first_missed[str(row.participant)] <= 1:
            continue  # dropped out before the sessions were recorded
        worker = str(row.worker)
        for s in range(config.transcripts_per_participant):
            n_conn = round(ci[worker] * config.labelled_sentences)
            n_comp = config.labelled_sentences - n_conn
            n_up = int(rng.binomial(n_comp, 0.5))
            said = (
                list(rng.choice(bank.CONNECTION, n_conn, replace=n_conn > len(bank.CONNECTION)))
                + list(rng.choice(bank.UPWARD, n_up, replace=n_up > len(bank.UPWARD)))
                + list(
                    rng.choice(
                        bank.DOWNWARD, n_comp - n_up, replace=n_comp - n_up > len(bank.DOWNWARD)
                    )
                )
                + list(rng.choice(bank.NEUTRAL, config.neutral_sentences, replace=False))
            )
            said = [str(x) for x in rng.permutation(np.array(said, dtype=object))]
            lines = []
            for sentence in said:
                lines.append(f"{_SPEAKER_PARTICIPANT}: {rng.choice(bank.PARTICIPANT)}")
                lines.append(f"{worker}: {sentence}")
            when = start + dt.timedelta(days=7 * (1 + 3 * s) + k % 5, hours=int(k % 6))
            rows.append(
                {
                    "participant": row.participant,
                    "worker": worker,
                    "session": f"s{s + 1}",
                    "started_at": when.isoformat(),
                    "text": "\n".join(lines) + "\n",
                }
            )
    return pd.DataFrame(rows, columns=["participant", "worker", "session", "started_at", "text"])


def simulate_trial(config: TrialConfig | None = None, seed: int = 20261201) -> SimulatedTrial:
    """Simulate a peer-support trial with a known truth (see the module docstring).

    Parameters
    ----------
    config
        Design and true parameters (default: the demo trial, 120 participants).
    seed
        Everything drawn follows from it: the same seed gives the same trial bit for bit.

    Returns
    -------
    SimulatedTrial
        The data frames, the truth, and :meth:`SimulatedTrial.write` for the files.

    Examples
    --------
    >>> trial = simulate_trial(TrialConfig(n_participants=42, ecg_timepoints=()), seed=1)
    >>> trial.participants.groupby("arm").size().to_dict()
    {'peer_support': 21, 'usual_care': 21}
    >>> round(trial.truth.arm_effects["scs_common_humanity"]["week12"], 3)
    0.345
    """
    config = config or TrialConfig()
    if len(config.site_offsets) != len(config.sites):
        raise ValueError("site_offsets needs one value per site")
    rng = np.random.default_rng(seed)
    people, workers = _design(config, rng)
    latent, responses = _questionnaires(config, people, rng)
    baseline = score(
        responses[responses["timepoint"] == config.timepoints[0]].drop(columns="timepoint"),
        "scs",
    ).set_index("participant")["scs_total"]
    first_missed = _dropout(config, people, baseline, rng)
    t_index = latent["timepoint"].map({tp: k for k, tp in enumerate(config.timepoints)})
    observed = t_index < latent["participant"].map(first_missed)
    latent["observed"] = observed.to_numpy()
    responses = responses[observed.to_numpy()].reset_index(drop=True)
    sessions = _transcripts(config, people, first_missed, rng)
    recordings, series = _recordings(config, people, first_missed, rng)
    return SimulatedTrial(
        config=config,
        truth=_truth(config, seed),
        seed=seed,
        participants=people,
        workers=workers,
        responses=responses,
        latent=latent,
        sessions=sessions,
        recordings=recordings,
        rr_ms=series,
    )
