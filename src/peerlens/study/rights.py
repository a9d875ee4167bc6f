"""Asking before doing: whether a caller may perform an operation, with nothing done.

A front end that must receive something large before it can call a study function (the web
app's streamed uploads) asks :func:`check_operation` first, so that a caller without the right
is refused before a byte of the upload is read. The answer comes from the same
:func:`~peerlens.study.policy.authorize` the operation itself calls, in the same words; the
operation still checks again, in its own transaction, when it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from peerlens.study._lookup import get_participant, get_study
from peerlens.study.errors import StudyError
from peerlens.study.policy import POLICY, Caller, Grant, authorize, guarded
from peerlens.study.storage import Store

__all__ = ["check_operation"]


@guarded("operation.check")
def check_operation(
    store: Store,
    study_name: str,
    operation: str | Callable[..., Any],
    *,
    participant: str | None = None,
    caller: Caller,
) -> Grant:
    """Refuse as ``operation`` would when ``caller`` may not perform it in the study.

    Parameters
    ----------
    store
        The study database.
    study_name
        The study the operation would touch.
    operation
        A key of :data:`~peerlens.study.policy.POLICY`, or the public study function that
        performs it (its declared operation is used, so the two cannot drift apart).
    participant
        The study code of the participant the operation would touch, when known: one that is
        outside the caller's sites is refused as unknown, as the operation refuses it.
    caller
        Who asks (a personal access token's scopes count, as for the operation).

    Returns
    -------
    Grant
        The sites and export tier the caller holds for the operation.

    Raises
    ------
    PermissionDenied
        The caller may not perform the operation (:class:`~peerlens.study.NotFound` for a study
        they hold no role in, or a participant outside their sites or not in the study).
    StudyError
        ``operation`` names no operation of the policy.
    """
    name = operation if isinstance(operation, str) else getattr(operation, "__policy__", "")
    if name not in POLICY or name == "operation.check":
        raise StudyError(f"operation {name or operation!r}: not an operation of the policy")
    with store.transaction() as s:
        authorize(s, caller, "operation.check")
        study = get_study(s, study_name)
        grant = authorize(s, caller, name, study)
        if participant is not None:
            get_participant(s, study, participant, grant=grant)
        return grant
