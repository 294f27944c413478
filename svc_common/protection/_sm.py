"""The national algorithms (国密) from OpenSSL via ``cryptography``: SM4-GCM and HMAC-SM3.

Hot paths copy a prepared HMAC object instead of building one per value (about half the cost).
"""

from __future__ import annotations

import itertools
import os
import re
import unicodedata

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from svc_common.protection._keys import KeyProvider

_SEALED_VERSION = 1
_NONCE_BYTES = 12
_TAG_BYTES = 16
PSEUDONYM_PREFIX = "ps1:"
# A GCM nonce is a random 8-byte prefix drawn once per sealer (and again in a forked child, and after 2**32
# values) followed by a 4-byte counter: NIST SP 800-38D §8.2.1's deterministic construction (fixed field +
# invocation field), with the fixed field drawn from the OS's CSPRNG (docs/collect.md, "Nonces").
_NONCE_PREFIX_BYTES = 8
_NONCE_COUNTER_LIMIT = 1 << (8 * (_NONCE_BYTES - _NONCE_PREFIX_BYTES))
# Bumped in a child after fork(): a sealer inherited from the parent must not go on with the parent's prefix and
# counter (both processes would hand out the same nonces).
_fork_generation = 0


def _after_fork_in_child() -> None:
    global _fork_generation
    _fork_generation += 1


os.register_at_fork(after_in_child=_after_fork_in_child)


class _NonceRun:
    """One prefix and its counter. Prefix and counter live and are replaced together, so a thread never pairs a
    counter value with another run's prefix; ``next()`` on an ``itertools.count`` is atomic under the GIL."""

    __slots__ = ("count", "generation", "prefix")

    def __init__(self) -> None:
        self.prefix = os.urandom(_NONCE_PREFIX_BYTES)
        self.count = itertools.count()
        self.generation = _fork_generation


class _NonceSource:
    """Unique 12-byte GCM nonces without a system call or a lock per value (an ``os.urandom`` per nonce was half
    the cost of sealing). A nonce repeats under one key only if two runs (sealers, processes, or 2**32 values of
    one) draw the same random 8-byte prefix: for P runs in a key's life, at most P²/2**65."""

    def __init__(self) -> None:
        self._run = _NonceRun()

    def take(self) -> bytes:
        run = self._run
        number = next(run.count)
        if number < _NONCE_COUNTER_LIMIT and run.generation == _fork_generation:
            return run.prefix + number.to_bytes(_NONCE_BYTES - _NONCE_PREFIX_BYTES, "big")
        return self._take_from_new_run(run)

    def _take_from_new_run(self, spent: _NonceRun) -> bytes:
        # No lock: two threads replacing the same spent run at once only waste a prefix (each run's is its own).
        if self._run is spent:
            self._run = _NonceRun()
        return self.take()


class SealError(ValueError):
    """A sealed value that cannot be opened: unknown key, tampered bytes, or the wrong context."""


def _hmac(key: bytes) -> hmac.HMAC:
    return hmac.HMAC(key, hashes.SM3())


def _derive(key: bytes, label: bytes) -> bytes:
    # Separate keys per purpose from one secret, so a pseudonym never equals a fingerprint.
    mac = _hmac(key)
    mac.update(b"qiming/" + label)
    return mac.finalize()


class Sealer:
    """SM4-GCM: confidentiality and integrity. ``context`` (e.g. the event id) is bound as associated data,
    so a sealed value copied onto another row does not open."""

    def __init__(self, keys: KeyProvider) -> None:
        ring = keys.keyring()
        self._keys = dict(ring.encryption_keys)
        self._active = ring.active_key_id
        self._header = bytes([_SEALED_VERSION, len(self._active)]) + self._active.encode()
        self._algorithm = algorithms.SM4(self._keys[self._active])
        self._nonces = _NonceSource()

    @property
    def active_key_id(self) -> str:
        return self._active

    def seal(self, plaintext: bytes, context: bytes = b"") -> bytes:
        nonce = self._nonces.take()
        encryptor = Cipher(self._algorithm, modes.GCM(nonce)).encryptor()
        if context:
            encryptor.authenticate_additional_data(context)
        body = encryptor.update(plaintext) + encryptor.finalize()
        return self._header + nonce + body + encryptor.tag

    def key_id_of(self, sealed: bytes) -> str:
        if len(sealed) < 2 or sealed[0] != _SEALED_VERSION:
            raise SealError("not a sealed value (unknown format version)")
        if len(sealed) < 2 + sealed[1] + _NONCE_BYTES + _TAG_BYTES:
            raise SealError(f"sealed value of {len(sealed)} bytes is too short for its header (truncated?)")
        return sealed[2 : 2 + sealed[1]].decode("ascii", "replace")

    def open(self, sealed: bytes, context: bytes = b"") -> bytes:
        key_id = self.key_id_of(sealed)
        key = self._keys.get(key_id)
        if key is None:
            raise SealError(f"sealed with key {key_id!r}, which is not in the keyring")
        start = 2 + sealed[1]
        nonce = sealed[start : start + _NONCE_BYTES]
        body = sealed[start + _NONCE_BYTES : -_TAG_BYTES]
        tag = sealed[-_TAG_BYTES:]
        decryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce, tag)).decryptor()
        if context:
            decryptor.authenticate_additional_data(context)
        try:
            return decryptor.update(body) + decryptor.finalize()
        except InvalidTag:
            raise SealError(
                "sealed value failed its integrity check (tampered, or opened in the wrong context)"
            ) from None


_PSEUDONYM = re.compile(PSEUDONYM_PREFIX + "[0-9a-f]{32}")
_PHONE_SEPARATORS = str.maketrans("", "", " \t-.()")
_PHONE_COUNTRY_PREFIXES = ("+86", "0086")


def normalize_pseudonym_input(kind: str, value: str) -> str:
    """The one normalisation applied before pseudonymizing, so that every service derives the same pseudonym from
    the same id however it was typed. Every kind: surrounding whitespace removed. ``phone``: also full-width
    characters made ASCII (NFKC), format characters (Unicode Cf: zero-width spaces, bidi marks, BOM) and the
    separators `` -.()`` removed and a leading ``+86`` / ``0086`` dropped, but only when what is left is all digits
    (anything else keeps its stripped form, so that distinct malformed values stay distinct). A value that is
    already clean (digits only, no surrounding blanks, not starting with ``0086``) is unchanged and keeps the
    pseudonym it always had; a digits-only ``0086…`` loses the prefix, so it gets the pseudonym of the number without
    it (docs/configuration.md). ``139\u200b12345678`` had a pseudonym of its own, so a separate person (review
    walk-sec 2026-12-06 F13)."""
    value = value.strip()
    if kind != "phone" or (value.isascii() and value.isdigit() and not value.startswith("0086")):
        return value
    compact = unicodedata.normalize("NFKC", value).translate(_PHONE_SEPARATORS)
    compact = "".join(char for char in compact if unicodedata.category(char) != "Cf")
    for prefix in _PHONE_COUNTRY_PREFIXES:
        if compact.startswith(prefix):
            compact = compact[len(prefix) :]
            break
    return compact if compact.isascii() and compact.isdigit() else value


class Pseudonymizer:
    """Keyed HMAC-SM3 pseudonyms: the same input gives the same pseudonym in every service (equality and
    joins work); without the key it can be neither reversed nor brute-forced from a phone-number list."""

    def __init__(self, keys: KeyProvider) -> None:
        self._mac = _hmac(_derive(keys.keyring().pseudonym_key, b"pseudonym"))

    def pseudonymize(self, kind: str, value: str) -> str:
        """``kind`` separates namespaces: the same digits as a phone and as an account differ. ``value`` is first
        normalised (:func:`normalize_pseudonym_input`); one that then already is a pseudonym is returned as it is
        (callers skip pseudonyms, and with blanks around one they would otherwise disagree)."""
        value = normalize_pseudonym_input(kind, value)
        if self.is_pseudonym(value):
            return value
        mac = self._mac.copy()
        mac.update(kind.encode() + b"\x00" + value.encode())
        return PSEUDONYM_PREFIX + mac.finalize()[:16].hex()

    @staticmethod
    def is_pseudonym(value: str) -> bool:
        """Exactly ``ps1:`` and 32 lowercase hex digits: anything else (e.g. clear text that happens to start with
        ``ps1:``) is pseudonymized, never stored as sent."""
        return _PSEUDONYM.fullmatch(value) is not None


class Fingerprinter:
    """A keyed digest of a payload: equal payloads, equal fingerprints; reveals nothing of the payload."""

    def __init__(self, keys: KeyProvider) -> None:
        self._mac = _hmac(_derive(keys.keyring().pseudonym_key, b"fingerprint"))

    def fingerprint(self, payload: bytes) -> str:
        mac = self._mac.copy()
        mac.update(payload)
        return mac.finalize()[:16].hex()
