"""PS relationships, sessions, transcripts/stories and ECG/RR recordings.

Recording files are stored once, content-addressed: ``<blob_dir>/<sha[:2]>/<sha>`` (plus the
original suffix), written to a temporary name first and renamed, so a crash leaves either no file
or a whole one. A file whose database transaction did not commit is an orphan that the next add
of the same content reuses; it holds no link to any participant.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from peerlens.study import _limits, audit
from peerlens.study._lookup import (
    get_participant,
    get_session,
    get_study,
    get_timepoint,
    refuse_erased,
)
from peerlens.study.errors import PermissionDenied, StudyError
from peerlens.study.models import (
    SESSION_MODES,
    Participant,
    PSRelationship,
    Recording,
    RecordingWindow,
    Session,
    Transcript,
)
from peerlens.study.policy import Caller, authorize, guarded
from peerlens.study.storage import Store

_CHUNK = 1 << 20


def _aware(when: dt.datetime, what: str) -> dt.datetime:
    if when.tzinfo is None:
        raise StudyError(f"{what} must carry a time zone (e.g. 2026-03-01T10:00:00+00:00)")
    return when.astimezone(dt.UTC)


@guarded("relationship.add")
def add_relationship(
    store: Store,
    study_name: str,
    ps_worker: str,
    service_user: str,
    *,
    started_at: dt.datetime,
    ended_at: dt.datetime | None = None,
    caller: Caller,
    reason: str | None = None,
) -> int:
    """Record that PS worker ``ps_worker`` supports ``service_user``; return the relationship id.

    A site-scoped caller needs both participants at their sites.
    """
    with store.transaction() as s:
        study = get_study(s, study_name)
        grant = authorize(s, caller, "relationship.add", study)
        worker = get_participant(s, study, ps_worker, grant=grant)
        user = get_participant(s, study, service_user, grant=grant)
        refuse_erased(s, worker, user)
        if worker.role != "ps_worker":
            raise StudyError(f"{ps_worker!r} is enrolled as {worker.role}, not ps_worker")
        if user.role != "service_user":
            raise StudyError(f"{service_user!r} is enrolled as {user.role}, not service_user")
        rel = PSRelationship(
            study_id=study.id,
            ps_worker_id=worker.id,
            service_user_id=user.id,
            started_at=_aware(started_at, "start"),
            ended_at=_aware(ended_at, "end") if ended_at else None,
        )
        s.add(rel)
        s.flush()
        audit.record(
            s,
            grant.actor,
            "relationship.add",
            "ps_relationship",
            f"{ps_worker}->{service_user}",
            study=study_name,
            new={"started_at": started_at.isoformat()},
            reason=reason,
        )
        return rel.id


@guarded("session.add")
def add_session(
    store: Store,
    study_name: str,
    relationship_id: int,
    label: str,
    *,
    started_at: dt.datetime,
    mode: str,
    duration_min: float | None = None,
    notes: str | None = None,
    caller: Caller,
    reason: str | None = None,
) -> int:
    """Add a session (``mode`` one of in_person, phone, video, text_chat); return its id.

    A site-scoped caller needs both people of the relationship at their sites.
    """
    if mode not in SESSION_MODES:
        raise StudyError(f"session mode {mode!r}: use one of {', '.join(SESSION_MODES)}")
    _limits.check(PSRelationship.id, relationship_id, "relationship")
    _limits.check(Session.label, label, "label")
    with store.transaction() as s:
        study = get_study(s, study_name)
        grant = authorize(s, caller, "session.add", study)
        rel = s.get(PSRelationship, relationship_id)
        if rel is None or rel.study_id != study.id:
            raise StudyError(f"study {study_name!r} has no relationship {relationship_id}")
        people = _relationship_people(s, rel)
        grant.check(study, *people)
        refuse_erased(s, *people)
        sess = Session(
            relationship_id=rel.id,
            label=label,
            started_at=_aware(started_at, "session start"),
            duration_min=duration_min,
            mode=mode,
            notes=notes,
        )
        s.add(sess)
        s.flush()
        audit.record(
            s,
            grant.actor,
            "session.add",
            "ps_session",
            f"{relationship_id}/{sess.id}",
            study=study_name,
            new={
                "label": audit.redacted(label),  # free text: its length only
                "mode": mode,
                "duration_min": duration_min,
                "notes": audit.redacted(notes),
            },
            reason=reason,
        )
        return sess.id


@guarded("transcript.add")
def add_transcript(
    store: Store,
    study_name: str,
    text: str,
    *,
    kind: str = "transcript",
    participant: str | None = None,
    session_id: int | None = None,
    session: str | None = None,
    author: str | None = None,
    speaker: str | None = None,
    caller: Caller,
    reason: str | None = None,
) -> int:
    """Store a transcript or story; a new version if one exists for the same owner and kind.

    Parameters
    ----------
    participant
        Study code of whose transcript or story it is (optional for a session transcript).
    session_id, session
        The PS session it belongs to, by id, or by label (with ``participant``).
    speaker
        For a transcript: the PS worker's speaker name in it, whose turns story analysis
        scores (not needed when the transcript has one speaker).
    caller
        Who stores it; a site-scoped caller only for their sites' participants and sessions.
    """
    if kind not in ("transcript", "story"):
        raise StudyError(f"kind {kind!r}: use transcript or story")
    if not text.strip():
        raise StudyError(f"the {kind} is empty")
    _limits.check(Session.id, session_id, "session")
    _limits.check(Transcript.author, author, "author")
    _limits.check(Transcript.speaker, speaker, "speaker")
    with store.transaction() as s:
        study = get_study(s, study_name)
        grant = authorize(s, caller, "transcript.add", study)
        owner = get_participant(s, study, participant, grant=grant) if participant else None
        pid = owner.id if owner is not None else None
        if owner is not None:
            refuse_erased(s, owner)
        if session is not None:
            if owner is None:
                raise StudyError("a session label needs the participant it belongs to")
            session_id = get_session(s, study, owner, session).id
        people: list[Participant] = [owner] if owner is not None else []
        if session_id is not None:
            sess = s.get(Session, session_id)
            rel = s.get(PSRelationship, sess.relationship_id) if sess is not None else None
            if rel is None or rel.study_id != study.id:
                raise StudyError(f"study {study_name!r} has no session {session_id}")
            people.extend(_relationship_people(s, rel))
        refuse_erased(s, *people)
        if grant.sites is not None and not people:
            raise PermissionDenied(
                "a site-scoped user may add transcripts only for a participant or session "
                "of their sites"
            )
        grant.check(study, *people)
        prior = s.scalars(
            select(Transcript.version)
            .where(
                Transcript.study_id == study.id,
                Transcript.kind == kind,
                Transcript.participant_id.is_(None)
                if pid is None
                else Transcript.participant_id == pid,
                Transcript.session_id.is_(None)
                if session_id is None
                else Transcript.session_id == session_id,
            )
            .order_by(Transcript.version.desc())
        ).first()
        t = Transcript(
            study_id=study.id,
            kind=kind,
            participant_id=pid,
            session_id=session_id,
            version=(prior or 0) + 1,
            author=author,
            text=text,
            speaker=speaker,
        )
        s.add(t)
        s.flush()
        audit.record(
            s,
            grant.actor,
            f"{kind}.add",
            "transcript",
            str(t.id),
            study=study_name,
            new={"version": t.version, "participant": participant, "text": audit.redacted(text)},
            reason=reason,
        )
        return t.id


def _relationship_people(s: DbSession, rel: PSRelationship) -> list[Participant]:
    people = [s.get(Participant, rel.ps_worker_id), s.get(Participant, rel.service_user_id)]
    return [p for p in people if p is not None]


def blob_path(blob_dir: Path, sha256: str, suffix: str) -> Path:
    """Where the file (or, for suffix ``.wfdb``, the folder) with digest ``sha256`` lives."""
    return blob_dir / sha256[:2] / f"{sha256}{suffix}"


#: Suffix of a stored WFDB record: a folder holding the header and its signal files.
WFDB_SUFFIX = ".wfdb"


def recording_file(blob_dir: Path, sha256: str, suffix: str) -> Path:
    """The path a reader opens for a stored recording (a WFDB record: its ``.hea``)."""
    path = blob_path(blob_dir, sha256, suffix)
    if suffix == WFDB_SUFFIX:
        headers = sorted(path.glob("*.hea"))
        return headers[0] if headers else path / "missing.hea"
    return path


def stored_digest(path: Path) -> str | None:
    """sha256 of a stored recording as it lies on disk (a WFDB folder: each file's name, size
    and bytes, in name order); ``None`` when it is missing. Stored WFDB records differ from the
    original (renamed files, header rewritten), so this is kept beside the original's digest
    and checked by ``audit verify``."""
    if path.is_dir():
        files = sorted(f for f in path.iterdir() if f.is_file())
        if not files:
            return None
        digest = hashlib.sha256()
        for f in files:
            digest.update(f"{f.name}\0{f.stat().st_size}\0".encode())
            digest.update(f.read_bytes())
        return digest.hexdigest()
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def remove_blob(path: Path) -> None:
    """Delete a stored recording file or WFDB folder (no error if already gone)."""
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def wfdb_files(src: Path) -> list[Path] | None:
    """The files of the WFDB record ``src`` names (its ``.hea``, or a ``.dat`` with a ``.hea``
    beside it): the header then each signal file once; ``None`` when ``src`` is not WFDB.

    The header format (record line, then one line per signal starting with its file name) is
    PhysioNet's WFDB header specification (Moody, "WFDB Applications Guide", ``header(5)``).

    Raises
    ------
    StudyError
        Unreadable header, multi-segment record, or a signal file missing beside the header.
    """
    suffix = src.suffix.lower()
    if suffix not in (".hea", ".dat"):
        return None
    hea = src if suffix == ".hea" else src.with_suffix(".hea")
    if not hea.is_file():
        return None
    lines = [
        line.strip()
        for line in hea.read_text(encoding="latin-1").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    head = lines[0].split() if lines else []
    if len(head) < 2 or not head[1].isdigit():
        raise StudyError(f"{hea.name}: not a WFDB header (record line 'NAME N_SIGNALS ...')")
    if "/" in head[0]:
        raise StudyError(f"{hea.name}: multi-segment WFDB records are not supported")
    names: list[str] = []
    for line in lines[1 : 1 + int(head[1])]:
        name = line.split()[0]
        if name == "~" or "/" in name or "\\" in name:
            raise StudyError(f"{hea.name}: signal file {name!r} is not a file beside the header")
        if name not in names:
            names.append(name)
    files = [hea]
    for name in names:
        f = hea.parent / name
        if not f.is_file():
            raise StudyError(f"{hea.name}: signal file {name} not found beside it")
        files.append(f)
    return files


def _digest_files(files: list[Path]) -> tuple[str, int]:
    """sha256 and total size of a file, or of a WFDB bundle (each file's name, size, bytes)."""
    digest = hashlib.sha256()
    size = 0
    bundle = len(files) > 1 or files[0].suffix.lower() == ".hea"
    for f in files:
        if bundle:
            digest.update(f"{f.name}\0{f.stat().st_size}\0".encode())
        with f.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
    return digest.hexdigest(), size


#: The record name every stored WFDB record gets (original names often hold people's names).
_RECORD = "rec"


def _renamed_header(header: str, names: dict[str, str]) -> str:
    """A WFDB header with its record called :data:`_RECORD` and each signal file renamed as in
    ``names`` (header(5): the first non-comment line is the record line, then one line per
    signal starting with its file name). Comment lines are dropped: recorders write patient
    names and dates of birth there."""
    out: list[str] = []
    record_done, n_signals, seen = False, 0, 0
    for line in header.splitlines():
        fields = line.split()
        if not fields or line.lstrip().startswith("#"):
            continue
        elif not record_done:
            record_done = True
            n_signals = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0
            out.append(" ".join([_RECORD, *fields[1:]]))
        elif seen < n_signals:
            seen += 1
            out.append(" ".join([names.get(fields[0], fields[0]), *fields[1:]]))
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def _store_files(target: Path, files: list[Path], bundle: bool) -> None:
    """Copy into the content-addressed place, under a temporary name first, then rename.

    A WFDB record is stored as ``rec.hea`` with ``rec_1.dat``, ...: pseudonymous names."""
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    if not bundle:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
        os.close(fd)
        shutil.copyfile(files[0], tmp)
        os.replace(tmp, target)
        return
    tmp_dir = Path(tempfile.mkdtemp(dir=target.parent, prefix=".part-"))
    names = {
        f.name: f"{_RECORD}_{i}{_safe_suffix(f) or '.dat'}" for i, f in enumerate(files[1:], 1)
    }
    (tmp_dir / f"{_RECORD}.hea").write_text(
        _renamed_header(files[0].read_text(encoding="latin-1"), names), encoding="latin-1"
    )
    for f in files[1:]:
        shutil.copyfile(f, tmp_dir / names[f.name])
    try:
        os.replace(tmp_dir, target)
    except OSError:  # another writer stored the same record first
        shutil.rmtree(tmp_dir, ignore_errors=True)


def _add_windows(
    s: DbSession,
    actor: str,
    study_name: str,
    rec: Recording,
    kind: str,
    device: str | None,
    windows: list[tuple[str, float, float]] | None,
    reason: str | None,
) -> None:
    """Adding a stored recording again: store the windows it did not have yet (audited);
    refuse a different kind or device, or a known window label with other bounds."""
    if kind != rec.kind or (device is not None and device != rec.device):
        raise StudyError(
            f"this file is already stored for the participant as recording {rec.id} "
            f"(kind {rec.kind}{', another device' if device != rec.device else ''}); "
            f"nothing was changed"
        )
    known = {
        w.label: (w.start_s, w.end_s)
        for w in s.scalars(select(RecordingWindow).where(RecordingWindow.recording_id == rec.id))
    }
    new = []
    for label, start, end in windows or []:
        if label not in known:
            new.append((label, start, end))
            known[label] = (start, end)
        elif known[label] != (start, end):
            raise StudyError(
                f"recording {rec.id} already has a window {label!r} from {known[label][0]} to "
                f"{known[label][1]} s; nothing was changed"
            )
    for label, start, end in new:
        s.add(RecordingWindow(recording_id=rec.id, label=label, start_s=start, end_s=end))
    if new:
        audit.record(
            s,
            actor,
            "recording.windows",
            "recording",
            rec.sha256,
            study=study_name,
            new={"windows": [[audit.redacted(label), a, b] for label, a, b in new]},
            reason=reason,
        )


def _read_recording(path: Path, kind: str, sampling_rate_hz: float | None) -> None:
    """Read ``path`` with the ECG readers of :mod:`peerlens.hrv` exactly as deriving the HRV
    results will (:func:`peerlens.hrv.read_ecg`, with the recording's kind for a text file and
    its sampling rate), so that a file they cannot read is refused when it is stored, not found
    at derive time. The file is read from disk (an upload from the temporary file it was
    streamed to), never from memory.

    Raises
    ------
    PeerlensError
        The reader's own error (:class:`peerlens.hrv.HrvInputError` and its kin), naming the
        file and what is wrong, as ``peerlens hrv analyze`` reports it.
    StudyError
        Any other failure of a reader on a damaged file, naming the file.
    """
    from peerlens import PeerlensError
    from peerlens.hrv import read_ecg
    from peerlens.study.derived._hrv import reader_kind

    try:
        read_ecg(path, fs=sampling_rate_hz, kind=reader_kind(path, kind))
    except PeerlensError:
        raise
    except Exception as exc:  # a damaged file can fail deep inside a reader's library
        raise StudyError(
            f"{path.name}: cannot be read as an ECG or RR recording "
            f"({type(exc).__name__}: {exc}); nothing was stored"
        ) from None


def parse_window(text: str) -> tuple[str, float, float]:
    """A window event written ``LABEL:START_S:END_S`` (the label may hold colons).

    Examples
    --------
    >>> parse_window("session:300:900")
    ('session', 300.0, 900.0)

    Raises
    ------
    StudyError
        Not three parts, or bounds that are not numbers.
    """
    parts = text.strip().rsplit(":", 2)
    try:
        return parts[0], float(parts[1]), float(parts[2])
    except (IndexError, ValueError):
        raise StudyError(f"window {text.strip()!r}: use LABEL:START_S:END_S") from None


def _safe_suffix(path: Path) -> str:
    """The file's last suffix, lower case, as stored (``.edf``); never earlier parts of the name,
    which may hold a person's name (``ana.ruiz.edf``).

    Examples
    --------
    >>> _safe_suffix(Path("zebedee.quuxley.rr.TXT")), _safe_suffix(Path("noext"))
    ('.txt', '')
    """
    suffix = path.suffix.lower()
    return suffix if suffix[1:].isalnum() and len(suffix) <= 10 else ""


@guarded("recording.add")
def add_recording(
    store: Store,
    study_name: str,
    path: str | Path,
    *,
    participant: str,
    session: str | None = None,
    kind: str = "ecg",
    device: str | None = None,
    sampling_rate_hz: float | None = None,
    windows: list[tuple[str, float, float]] | None = None,
    timepoint: str | None = None,
    caller: Caller,
    reason: str | None = None,
) -> tuple[int, str]:
    """Store an ECG/RR file content-addressed and link it; return (recording id, sha256).

    The file is first read as ``peerlens study derive`` will read it (:func:`_read_recording`):
    one the ECG readers cannot read is refused with their message (the file and what is
    wrong), and nothing is stored.

    A WFDB record (its ``.hea``, or its ``.dat`` with the ``.hea`` beside it) is stored whole:
    header and signal files in one folder, addressed by the sha256 of the bundle (each file's
    name, size and bytes). Adding the same file for the same participant again returns the
    existing recording, with any windows it did not have yet added (a different kind or
    device, or a known window label with other bounds, is refused).
    ``windows`` are labelled ``(label, start_s, end_s)`` events within the recording;
    ``timepoint`` is the study timepoint (lab visit) it was recorded at, which the HRV analysis
    models it at (:func:`peerlens.study.hrv_dataset`). A site-scoped caller adds recordings for
    their sites' participants only.
    """
    if kind not in ("ecg", "rr"):
        raise StudyError(f"recording kind {kind!r}: use ecg or rr")
    src = Path(path)
    if not src.is_file():
        raise StudyError(f"{src}: no such file")
    if sampling_rate_hz is not None and not sampling_rate_hz > 0:
        raise StudyError(f"sampling rate {sampling_rate_hz}: must be positive")
    _limits.check(Recording.device, device, "device")
    for label, start, end in windows or []:
        _limits.check(RecordingWindow.label, label, "window label")
        if not 0 <= start < end:
            raise StudyError(f"window {label!r}: need 0 <= start ({start}) < end ({end})")
    wfdb = wfdb_files(src)
    files = wfdb or [src]
    sha, size = _digest_files(files)
    suffix = WFDB_SUFFIX if wfdb else _safe_suffix(src)
    with store.transaction() as s:
        study = get_study(s, study_name)
        grant = authorize(s, caller, "recording.add", study)
        p = get_participant(s, study, participant, grant=grant)
        refuse_erased(s, p)
        sess_id = get_session(s, study, p, session).id if session else None
        tp_id = get_timepoint(s, study, timepoint).id if timepoint else None
        existing = s.scalars(
            select(Recording).where(Recording.participant_id == p.id, Recording.sha256 == sha)
        ).first()
        if existing is not None:
            if existing.timepoint_id != tp_id and timepoint is not None:
                raise StudyError(
                    f"this file is already stored for the participant as recording "
                    f"{existing.id} at another timepoint (or none); nothing was changed"
                )
            _add_windows(s, grant.actor, study_name, existing, kind, device, windows, reason)
            return existing.id, sha
        _read_recording(src, kind, sampling_rate_hz)
        target = blob_path(store.blob_dir, sha, suffix)
        _store_files(target, files, bundle=wfdb is not None)
        rec = Recording(
            participant_id=p.id,
            session_id=sess_id,
            sha256=sha,
            stored_sha256=stored_digest(target),
            suffix=suffix,
            size_bytes=size,
            kind=kind,
            device=device,
            sampling_rate_hz=sampling_rate_hz,
            timepoint_id=tp_id,
        )
        s.add(rec)
        s.flush()
        for label, start, end in windows or []:
            s.add(RecordingWindow(recording_id=rec.id, label=label, start_s=start, end_s=end))
        audit.record(
            s,
            grant.actor,
            "recording.add",
            "recording",
            sha,
            study=study_name,
            new={
                "participant": participant,
                # Device names, session and window labels are free text: their length only.
                "session": sess_id,
                "kind": kind,
                "device": audit.redacted(device),
                "sampling_rate_hz": sampling_rate_hz,
                "timepoint": timepoint,
                "bytes": size,
                "windows": [[audit.redacted(label), a, b] for label, a, b in windows or []],
            },
            reason=reason,
        )
        return rec.id, sha
