"""Password hashes for `--auth-file`: `python -m workbench hash-password` writes them, the app checks logins
against them; a plain password is never kept on disk.

The stdlib's `hashlib.scrypt` (a memory-hard key derivation function, RFC 7914) with a random 16-byte salt per
password, rather than a hand-made scheme or a new dependency: the hash of a leaked file costs an attacker
~16 MiB and tens of milliseconds per guess, and two users with one password get different hashes. The
parameters travel in the hash, so they can be raised later without breaking older lines:

    scrypt$16384$8$1$<salt, base64>$<key, base64>
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SCHEME = "scrypt"
N, R, P = 2**14, 8, 1  # 16 MiB of memory per check (128 * N * R bytes), ~50 ms on one core
KEY_BYTES = 32
SALT_BYTES = 16
_MAX_MEMORY = 64 * 1024 * 1024  # OpenSSL's default limit (32 MiB) is just above N=2**14's need; allow headroom


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=_MAX_MEMORY, dklen=KEY_BYTES)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str) -> str:
    """The line's hash field for `password` (a new random salt each time)."""
    if not password:
        raise ValueError("an empty password cannot be hashed")
    salt = secrets.token_bytes(SALT_BYTES)
    return f"{SCHEME}${N}${R}${P}${_b64(salt)}${_b64(_derive(password, salt, N, R, P))}"


def is_hash(text: str) -> bool:
    """Whether `text` reads as a hash this module wrote (its scheme, numbers and base64 parts)."""
    parts = text.split("$")
    if len(parts) != 6 or parts[0] != SCHEME or not all(p.isdigit() for p in parts[1:4]):
        return False
    try:
        base64.b64decode(parts[4], validate=True)
        return len(base64.b64decode(parts[5], validate=True)) == KEY_BYTES
    except ValueError:
        return False


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches the stored hash (compared in constant time)."""
    if not is_hash(stored):
        return False
    _scheme, n, r, p, salt, key = stored.split("$")
    derived = _derive(password, base64.b64decode(salt), int(n), int(r), int(p))
    return hmac.compare_digest(derived, base64.b64decode(key))
