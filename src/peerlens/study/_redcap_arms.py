"""REDCap arms as study arms: the arm number in a unique event name, and the study arm it is.

REDCap names every event of a longitudinal project ``<event>_arm_<N>``, ``N`` the arm's number
(1, 2, ... in the order the project's arms were made; REDCap's "Define My Events" page and the
API's ``exportEvents``). A study that lists its arms (``arms: [intervention, control]``) takes
them in that order: REDCap's arm 1 is the first, arm 2 the second. A study without arms keeps the
event names only (as it always did).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_ARM = re.compile(r"_arm_(?P<n>[1-9][0-9]*)$")


def event_arm(event: str) -> int | None:
    """REDCap's arm number in unique event name ``event``, or ``None`` (no ``_arm_N``).

    Examples
    --------
    >>> event_arm("baseline_arm_1"), event_arm("event_3_arm_12"), event_arm("baseline")
    (1, 12, None)
    """
    m = _ARM.search(event)
    return int(m["n"]) if m else None


def study_arm(event: str, arms: Sequence[str]) -> tuple[str | None, str | None]:
    """The study arm that ``event``'s REDCap arm is, or why there is none.

    Parameters
    ----------
    event
        A unique event name.
    arms
        The study's arm names, in order (REDCap's arm 1 first); empty when the study has none.

    Returns
    -------
    tuple
        ``(arm, None)`` (``arm`` ``None`` when the study has no arms or the event names none),
        or ``(None, problem)`` when the study has fewer arms than the event's number.

    Examples
    --------
    >>> study_arm("week_4_arm_2", ["intervention", "control"])
    ('control', None)
    >>> study_arm("week_4_arm_3", ["intervention", "control"])[1]
    "event 'week_4_arm_3' is in REDCap arm 3 but the study has 2 arms (intervention, control)"
    """
    number = event_arm(event)
    if not arms or number is None:
        return None, None
    if number > len(arms):
        why = f"event {event!r} is in REDCap arm {number} but the study has {len(arms)} arms"
        return None, f"{why} ({', '.join(arms)})"
    return arms[number - 1], None
