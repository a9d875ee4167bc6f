"""The identity vault: identifying fields encrypted at rest, with a key kept outside the database.

What is identifying (names, contacts, dates of birth, REDCap ``Identifier? = y`` fields, fields a
researcher flags) is stored only in :class:`~peerlens.study.models.IdentityVault`, one row per
participant, as AES-256-GCM ciphertext (NIST SP 800-38D) of the participant's fields as JSON. The
associated data binds each ciphertext to its database and participant, so a row copied onto
another participant does not decrypt.

The 32-byte master key never enters the database. It comes from, in order:

1. ``PEERLENS_VAULT_KEY``: the key itself, URL-safe base64 (``peerlens vault new-key`` prints one);
2. ``PEERLENS_VAULT_KEY_FILE``: a file holding that text;
3. ``$PEERLENS_HOME/keys/<database id>.key`` (``PEERLENS_HOME`` defaults to ``~/.peerlens``),
   written by ``peerlens init`` with permissions 0600.

Keys are derived from it with HKDF-SHA256 (RFC 5869), one per purpose: one encrypts, one makes
keyed hashes (HMAC-SHA256, RFC 2104), three seal the data tables and the audit chain's seal
entries against edits made behind peerlens's back (see :mod:`peerlens.study.integrity`), one
binds the stored digests of bearer tokens such as web sessions (see
:func:`peerlens.study.keys.token_mac`), and one makes the MAC every audit entry carries (see
:mod:`peerlens.study.audit`). The audit log records that an identifying field
changed with a keyed hash of the new value salted per participant, never the value: with the key
and the salt one can check a guessed value, without them nothing; erasure deletes the salt with
the vault row, after which not even the key holder can link the hashes to a value. The database
stores a keyed check value, so a wrong key is refused with a clear message instead of garbling
data.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from peerlens.study.errors import StudyError

__all__ = [
    "VaultKey",
    "VaultKeyError",
    "decode_key",
    "default_key_file",
    "generate_key",
    "load_key",
]

_KEY_ENV = "PEERLENS_VAULT_KEY"
_KEY_FILE_ENV = "PEERLENS_VAULT_KEY_FILE"
_NONCE = 12


class VaultKeyError(StudyError):
    """The vault key is missing, malformed or not this database's key."""


def generate_key() -> str:
    """A new random 32-byte master key as URL-safe base64 text (44 characters)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii")


def decode_key(text: str, where: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text.strip().encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raw = b""
    if len(raw) != 32:
        raise VaultKeyError(f"{where}: not a peerlens vault key (32 bytes, URL-safe base64)")
    return raw


def peerlens_home() -> Path:
    """``$PEERLENS_HOME`` or ``~/.peerlens``."""
    return Path(os.environ.get("PEERLENS_HOME") or Path.home() / ".peerlens").expanduser()


def default_key_file(database_id: str) -> Path:
    """Where ``peerlens init`` keeps the key of the database with id ``database_id``."""
    return peerlens_home() / "keys" / f"{database_id}.key"


def write_key_file(path: Path, key_text: str) -> None:
    """Write ``key_text`` to ``path`` readable by its owner only (refusing to overwrite)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key_text + "\n")


@dataclass(frozen=True)
class VaultKey:
    """A master key with its derived encryption and hashing keys (see module docstring)."""

    enc: bytes
    mac: bytes
    source: str
    #: Key of the row seals (:mod:`peerlens.study.integrity`): MACs stored beside the rows.
    seal_key: bytes = b""
    #: Key of the seal tallies: per-seal values summed into the audit chain, never stored.
    tally_key: bytes = b""
    #: Key of the MACs of the audit chain's seal entries (``data.seal`` / ``data.reseal``).
    entry_key: bytes = b""
    #: Key binding stored digests of bearer tokens (web sessions, access tokens) to the key.
    token_key: bytes = b""
    #: Key of the MAC every audit entry carries (:func:`peerlens.study.audit.entry_mac`).
    audit_key: bytes = b""

    @classmethod
    def from_master(cls, master: bytes, source: str) -> VaultKey:
        """Derive the working keys from a 32-byte master key."""

        def derive(label: bytes) -> bytes:
            return HKDF(hashes.SHA256(), 32, salt=None, info=b"peerlens vault " + label).derive(
                master
            )

        return cls(
            derive(b"encryption"),
            derive(b"keyed hash"),
            source,
            derive(b"row seal"),
            derive(b"seal tally"),
            derive(b"seal entry"),
            derive(b"bearer token"),
            derive(b"audit entry"),
        )

    @property
    def check(self) -> str:
        """The keyed check value stored in the database to recognise this key."""
        return hmac.new(self.mac, b"peerlens vault key check", hashlib.sha256).hexdigest()

    def keyed_hash(self, salt: bytes, field: str, value: str) -> str:
        """HMAC-SHA256 of ``field`` and ``value`` under this key and a per-participant ``salt``
        (hex, 32 characters: 128 bits are plenty to tell values apart)."""
        msg = salt + field.encode("utf-8") + b"\x00" + value.encode("utf-8")
        return hmac.new(self.mac, msg, hashlib.sha256).hexdigest()[:32]

    def seal(self, fields: dict[str, str], aad: str) -> bytes:
        """AES-256-GCM ciphertext of ``fields`` as JSON, bound to ``aad``, in format 1:
        a version byte, the nonce, then the ciphertext of the JSON padded to a multiple of
        :data:`PAD_BLOCK` bytes (so the length tells only a bucket, not the values' length)."""
        nonce = secrets.token_bytes(_NONCE)
        plain = pad(json.dumps(fields, ensure_ascii=False, sort_keys=True).encode("utf-8"))
        return _V1 + nonce + AESGCM(self.enc).encrypt(nonce, plain, _v1_aad(aad))

    def open(self, blob: bytes, aad: str) -> dict[str, str]:
        """The fields sealed in ``blob``; refused when the key, the data or ``aad`` differ.

        Reads format 1 (:meth:`seal`) and the unpadded format 0 of entries written before it
        (nonce first, no version byte); a format-1 blob authenticates the version in its
        associated data, so the formats cannot be confused."""
        plain: bytes | None = None
        if blob[:1] == _V1:
            with contextlib.suppress(InvalidTag, ValueError):
                body = blob[1:]
                plain = unpad(AESGCM(self.enc).decrypt(body[:_NONCE], body[_NONCE:], _v1_aad(aad)))
        if plain is None:  # format 0 (a format-0 nonce may start with the version byte too)
            try:
                plain = AESGCM(self.enc).decrypt(blob[:_NONCE], blob[_NONCE:], aad.encode("utf-8"))
            except (InvalidTag, ValueError):
                raise VaultKeyError(
                    f"an identity-vault entry ({aad}) does not decrypt with the key from "
                    f"{self.source}: wrong key, or the entry was changed or moved"
                ) from None
        return dict(json.loads(plain.decode("utf-8")))


#: Vault plaintexts are padded to a multiple of this many bytes before encryption.
PAD_BLOCK = 32
_V1 = b"\x01"


def _v1_aad(aad: str) -> bytes:
    return b"peerlens-vault-v1\x00" + aad.encode("utf-8")


def pad(plain: bytes) -> bytes:
    """``plain`` with ISO/IEC 7816-4 padding (``0x80`` then zeros) to a multiple of
    :data:`PAD_BLOCK` bytes (always at least one byte of padding).

    Examples
    --------
    >>> len(pad(b"x" * 31)), len(pad(b"x" * 32)), unpad(pad(b"abc"))
    (32, 64, b'abc')
    """
    n = PAD_BLOCK - len(plain) % PAD_BLOCK
    return plain + b"\x80" + b"\x00" * (n - 1)


def unpad(padded: bytes) -> bytes:
    """Undo :func:`pad` (refused with ``ValueError`` when the padding is malformed)."""
    body = padded.rstrip(b"\x00")
    if not body.endswith(b"\x80") or len(padded) % PAD_BLOCK:
        raise ValueError("bad vault padding")
    return body[:-1]


def load_key(database_id: str, key_file: Path | None = None) -> VaultKey:
    """The vault key of database ``database_id``: from ``key_file`` when given, else from the
    environment or the default key file (see the module docstring).

    Raises
    ------
    VaultKeyError
        No key found, or a key that is not 32 bytes of URL-safe base64.
    """
    env = os.environ.get(_KEY_ENV)
    if env and key_file is None:
        return VaultKey.from_master(decode_key(env, _KEY_ENV), _KEY_ENV)
    file_env = os.environ.get(_KEY_FILE_ENV)
    if key_file is not None:
        path = key_file
    else:
        path = Path(file_env).expanduser() if file_env else default_key_file(database_id)
    try:
        mode = path.stat().st_mode
        if os.name == "posix" and mode & 0o077:
            raise VaultKeyError(
                f"{path}: the vault key file is readable by others (mode {mode & 0o777:o}); "
                f"make it private: chmod 600 {path}"
            )
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise VaultKeyError(
            f"no identity-vault key: set {_KEY_ENV} or {_KEY_FILE_ENV}, or put the key file "
            f"made by peerlens init at {path}"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise VaultKeyError(f"{path}: cannot read the vault key ({exc})") from None
    return VaultKey.from_master(decode_key(text, str(path)), str(path))
