"""The one revocation rule (``peerlens.study._revocation``) on chains of entries written out by
hand: a revoking entry after the latest issuing entry revokes, for tokens and links alike.
(Its use against a database, on SQLite and PostgreSQL, is in tests/security/test_review7.py.)"""

from __future__ import annotations

from typing import Any

import pytest

from peerlens.study._revocation import API_TOKEN, PARTICIPANT_LINK, revoking_seq


def _chain(*entries: tuple[str, dict[str, Any]]) -> list[tuple[int, str, dict[str, Any]]]:
    """Entries numbered 1, 2, ... in chain order."""
    return [(seq, action, new) for seq, (action, new) in enumerate(entries, start=1)]


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ([("token.create", {})], None),
        ([("token.create", {}), ("token.revoke", {})], 2),
        # An id reused after its row was deleted: the old token's revocation does not count.
        ([("token.create", {}), ("token.revoke", {}), ("token.create", {})], None),
        ([("token.revoke", {})], 1),  # no creation recorded: the revocation still counts
    ],
)
def test_a_token_is_revoked_by_a_revocation_after_its_latest_creation(
    entries: list[tuple[str, dict[str, Any]]], expected: int | None
) -> None:
    assert revoking_seq(API_TOKEN, 7, _chain(*entries)) == expected


_ISSUE_7 = ("link.issue", {"link": 7, "timepoint": "baseline"})


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ([_ISSUE_7], None),
        ([_ISSUE_7, ("link.revoke", {"timepoint": None})], 2),
        ([_ISSUE_7, ("link.revoke", {"timepoint": "baseline"})], 2),
        ([_ISSUE_7, ("link.revoke", {"timepoint": "week12"})], None),
        # A new link for the same timepoint replaces it; one for another timepoint does not.
        ([_ISSUE_7, ("link.issue", {"link": 8, "timepoint": "baseline"})], 2),
        ([_ISSUE_7, ("link.issue", {"link": 8, "timepoint": "week12"})], None),
        # What came before its issue is about earlier links.
        ([("link.revoke", {"timepoint": None}), _ISSUE_7], None),
        ([("link.issue", {"link": 6, "timepoint": "baseline"}), _ISSUE_7], None),
        # No issue recorded: only a revocation of every timepoint is known to cover it.
        ([("link.revoke", {"timepoint": None})], 1),
        ([("link.revoke", {"timepoint": "baseline"})], None),
        # The first revoking entry is the one named.
        ([_ISSUE_7, ("link.revoke", {"timepoint": "baseline"}), ("link.revoke", {})], 2),
    ],
)
def test_a_link_is_revoked_by_a_revocation_or_replacement_after_its_issue(
    entries: list[tuple[str, dict[str, Any]]], expected: int | None
) -> None:
    assert revoking_seq(PARTICIPANT_LINK, 7, _chain(*entries)) == expected
