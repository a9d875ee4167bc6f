"""Analysing a text's sentences for a signed-in user, without storing anything.

The story studio (:mod:`peerlens.study.stories`) stores a PS worker's own practice stories with
their analysis; this module answers "what would the model say about this text?" for any active
user (the JSON API's story analysis), touching no study data. It is a study function all the
same, so that it goes through the one permission seam: an active account (or a token with the
``read`` scope) is needed, and the text is never written anywhere, the audit log included.
"""

from __future__ import annotations

from peerlens.narrative import StoryAnalysis
from peerlens.study.errors import StudyError
from peerlens.study.policy import Caller, authorize, guarded
from peerlens.study.storage import Store
from peerlens.study.stories import MAX_STORY_CHARS

__all__ = ["analyse_text"]


@guarded("story.analyse")
def analyse_text(
    store: Store,
    text: str,
    *,
    transcript: bool = False,
    speaker: str | None = None,
    caller: Caller,
) -> StoryAnalysis:
    """Label each sentence of ``text`` (connection, upward, downward, neutral) with its cues and
    reframing hint, and summarise it, as :func:`peerlens.narrative.analyze` does.

    Parameters
    ----------
    text
        A story, or with ``transcript=True`` a transcript of which ``speaker``'s turns are
        scored; at most :data:`~peerlens.study.stories.MAX_STORY_CHARS` characters.
    caller
        Any active user.

    Raises
    ------
    peerlens.narrative.NarrativeError
        The text cannot be analysed (empty, not English, a malformed transcript); the message
        says what and where.
    """
    from peerlens.narrative import analyze

    with store.transaction() as s:
        authorize(s, caller, "story.analyse")
    if len(text) > MAX_STORY_CHARS:
        raise StudyError(
            f"text: {len(text):,} characters; the analysis takes at most {MAX_STORY_CHARS:,}"
        )
    return analyze(text, transcript=transcript, speaker=speaker, source="text")
