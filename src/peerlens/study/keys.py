"""Rotating the identity-vault key (see :mod:`peerlens.study.vault` for how keys are kept), and
binding bearer tokens to it (:func:`token_mac`, :func:`api_token_mac`)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

from sqlalchemy import select
from sqlalchemy.orm import Session

from peerlens.study import audit
from peerlens.study._identity import rekey
from peerlens.study._revocation import revived, revoked_in_chain
from peerlens.study.errors import TamperedError
from peerlens.study.integrity import check_seals, ensure_scheme, reseal_all
from peerlens.study.models import ApiToken, Setting, as_utc, utcnow
from peerlens.study.policy import Caller, authorize, guarded
from peerlens.study.storage import STORE_KEY, Store
from peerlens.study.vault import VaultKey, decode_key


@guarded("vault.rotate")
def rotate_vault_key(
    store: Store, new_key: str, *, caller: Caller, reason: str | None = None
) -> int:
    """Re-encrypt every identity-vault entry under ``new_key`` (URL-safe base64, as
    ``peerlens vault new-key`` prints) in one transaction; return how many entries.

    The current key must be available as usual. Afterwards only ``new_key`` opens the vault:
    put it where the old one was (key file or ``PEERLENS_VAULT_KEY``) before the next command,
    and keep the old key as long as backups made under it are kept. Keyed hashes already in the
    audit log stay as they were (they were made under the old key). Every row seal is remade
    under the new key (see :mod:`peerlens.study.integrity`). The audit log's rows keep their
    MACs under the old key: a checkpoint MACed with the new key vouches for them (see
    :mod:`peerlens.study.audit`). Every access token is revoked (a leaked key could have made
    one) and its MAC remade under the new key.
    """
    new = VaultKey.from_master(decode_key(new_key, "the new key"), "the new key")
    with store.transaction() as s:
        actor = authorize(s, caller, "vault.rotate").actor
        old = store.vault_key(s)  # the current key must open the vault first
        ensure_scheme(s)  # a database sealed under an older scheme is upgraded first
        # Resealing and checkpointing under the new key must never bless anything changed
        # outside peerlens. Every unit is read once, checked under the old key and sealed under
        # the new one from the same rows (a row changed with SQL after the check keeps the seal
        # of what was checked, and is named). The chain's lock, held from before the check,
        # keeps lawful writers from sealing anything in between.
        audit.lock_chain(s)
        seals = check_seals(s, old, seal_with=new)
        found = [
            *audit.check_chain(s, key=old).problems,
            *check_token_macs(s, old),
            *seals.problems,
        ]
        if found:
            raise TamperedError(
                f"{len(found)} problem(s) found by the audit log's MACs, the access tokens' "
                f"MACs or the row seals, e.g. {found[0]}; nothing was rotated. Run "
                "`peerlens audit verify`"
            )
        n = rekey(s, new)
        row = s.get(Setting, "vault_key_check")
        if row is None:
            s.add(Setting(key="vault_key_check", value=new.check))
        else:
            row.value = new.check
        tokens = _remac_tokens(s, new)
        audit.record(
            s,
            actor,
            "vault.rotate",
            "identity_vault",
            None,
            new={"rows": n, "tokens_revoked": tokens},
            reason=reason,
        )
        audit.checkpoint(s, actor, new, reason="vault key rotated")
        # Every row seal is remade under the new key (its tallies restart the chain's totals).
        reseal_all(s, new, actor=actor, reason="vault key rotated", checked=seals)
    store.forget_key()
    return n


def token_mac(key: VaultKey, token: str, *bound: object) -> str:
    """HMAC-SHA256 (hex) of a bearer ``token`` together with what it is ``bound`` to (its user's
    id, when it was issued, ...) under the vault's token key.

    Store it beside the row that a token's plain sha256 finds, and accept the row only when
    this MAC, recomputed from the token presented and the row's own values, matches (compare
    with :func:`hmac.compare_digest`). Whoever writes to the database without the vault key then
    cannot make a row that any token opens, nor move a real token's row to another user or
    extend its life. Rotating the vault key ends every such token.

    Examples
    --------
    >>> from peerlens.study.vault import VaultKey
    >>> key = VaultKey.from_master(bytes(32), "example")
    >>> a = token_mac(key, "t0ken", 7, "2026-01-05T09:00:00.000000+00:00")
    >>> a == token_mac(key, "t0ken", 8, "2026-01-05T09:00:00.000000+00:00"), len(a)
    (False, 64)
    """
    msg = audit.canonical_json([token, *(str(b) for b in bound)]) or ""
    return hmac.new(key.token_key, msg.encode("utf-8"), hashlib.sha256).hexdigest()


def _when(value: dt.datetime | None) -> str:
    moment = as_utc(value)
    return "" if moment is None else moment.isoformat(timespec="microseconds")


def api_token_mac(key: VaultKey, row: ApiToken) -> str:
    """The MAC an access token's row must carry: :func:`token_mac` of its stored digest with
    everything that decides what it may do (its user, scopes, expiry and revocation time).

    It is made from the digest, not the token, so that revoking a token (whose token is never
    stored) can remake it. Changing any of these fields with SQL, un-revoking a token included,
    leaves a row whose MAC no longer matches: the token is refused and ``audit verify`` names it.
    A copy of the row taken before its revocation still matches; the audit chain refuses it
    (:func:`peerlens.study._revocation.revoked_in_chain`).
    """
    return token_mac(
        key,
        row.token_sha256,
        "api token",
        row.user_id,
        row.scopes,
        _when(row.expires_at),
        _when(row.revoked_at),
    )


def token_row_valid(session: Session, row: ApiToken) -> bool:
    """Whether an access token's row carries the MAC of its fields under the vault key, and
    is not revoked by the audit chain (see :mod:`peerlens.study._revocation`)."""
    key: VaultKey = session.info[STORE_KEY].vault_key(session)
    return (
        row.token_mac is not None
        and hmac.compare_digest(row.token_mac, api_token_mac(key, row))
        and revoked_in_chain(session, row) is None
    )


def check_token_macs(session: Session, key: VaultKey) -> list[str]:
    """Name every access token whose row does not carry the MAC of its fields under ``key``,
    or whose row says it is live although the audit chain revoked it."""
    problems = []
    for row in session.scalars(select(ApiToken).order_by(ApiToken.id)):
        if row.token_mac is None or not hmac.compare_digest(row.token_mac, api_token_mac(key, row)):
            problems.append(
                f"table api_token, id {row.id}: changed outside peerlens (its user, scopes, "
                "expiry or revocation differ from what its MAC binds); the token is refused"
            )
        elif (found := revived(session, row)) is not None:
            problems.append(found)
    return problems


def _remac_tokens(session: Session, new: VaultKey) -> int:
    """Revoke every live access token and remake every token's MAC under ``new``; return how
    many were revoked."""
    now, revoked = utcnow(), 0
    for row in session.scalars(select(ApiToken)):
        if row.revoked_at is None:
            row.revoked_at = now
            revoked += 1
        row.token_mac = api_token_mac(new, row)
    return revoked
