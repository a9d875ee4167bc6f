"""Rotating the identity-vault key (see :mod:`peerlens.study.vault` for how keys are kept), and
binding bearer tokens to it (:func:`token_mac`)."""

from __future__ import annotations

import hashlib
import hmac

from peerlens.study import audit
from peerlens.study._identity import rekey
from peerlens.study.errors import TamperedError
from peerlens.study.integrity import check_seals, reseal_all
from peerlens.study.models import Setting
from peerlens.study.policy import Caller, authorize, guarded
from peerlens.study.storage import Store
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
    under the new key (see :mod:`peerlens.study.integrity`).
    """
    new = VaultKey.from_master(decode_key(new_key, "the new key"), "the new key")
    with store.transaction() as s:
        actor = authorize(s, caller, "vault.rotate").actor
        old = store.vault_key(s)  # the current key must open the vault first
        # Resealing under the new key must never bless data changed outside peerlens.
        found = check_seals(s, old)
        if found.problems:
            raise TamperedError(
                f"{len(found.problems)} problem(s) found by the row seals, e.g. "
                f"{found.problems[0]}; nothing was rotated. Run `peerlens audit verify`"
            )
        n = rekey(s, new)
        row = s.get(Setting, "vault_key_check")
        if row is None:
            s.add(Setting(key="vault_key_check", value=new.check))
        else:
            row.value = new.check
        audit.record(
            s, actor, "vault.rotate", "identity_vault", None, new={"rows": n}, reason=reason
        )
        # Every row seal is remade under the new key (its tallies restart the chain's totals).
        reseal_all(s, new, actor=actor, reason="vault key rotated")
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
