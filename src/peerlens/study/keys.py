"""Rotating the identity-vault key (see :mod:`peerlens.study.vault` for how keys are kept)."""

from __future__ import annotations

from peerlens.study import audit
from peerlens.study._identity import rekey
from peerlens.study.integrity import reseal_all
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
        store.vault_key(s)  # the current key must open the vault first
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
