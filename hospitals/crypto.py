"""Envelope encryption primitives (DESIGN §3). Pure functions over bytes; no Django.

A blob is `b"NF1" || nonce(12) || AES-256-GCM(ciphertext+tag)`. The associated data names the hospital
and the record the blob belongs to, so ciphertext copied to another tenant or record does not decrypt.
"""

import hashlib
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

BLOB_MAGIC = b"NF1"
WRAP_MAGIC = b"NK1"
NONCE_BYTES = 12
KEY_BYTES = 32


class DecryptionError(Exception):
    """Ciphertext that cannot be opened: tampered, truncated, or bound to another hospital or record."""


def generate_data_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def key_id(key: bytes) -> str:
    """A short public fingerprint of a key, to tell which master key wrapped a data key."""
    return hashlib.sha256(b"neurofed-key-id" + key).hexdigest()[:16]


def _seal(key: bytes, magic: bytes, plaintext: bytes, aad: bytes) -> bytes:
    if len(key) != KEY_BYTES:
        raise ValueError("AES-256 needs a 32-byte key")
    nonce = secrets.token_bytes(NONCE_BYTES)
    return magic + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def _open(key: bytes, magic: bytes, sealed: bytes, aad: bytes, what: str) -> bytes:
    if len(key) != KEY_BYTES:
        raise ValueError("AES-256 needs a 32-byte key")
    header = len(magic) + NONCE_BYTES
    if len(sealed) < header + 16 or not sealed.startswith(magic):
        raise DecryptionError(f"{what} is truncated or not in NeuroFed's format")
    nonce = sealed[len(magic) : header]
    try:
        return AESGCM(key).decrypt(nonce, sealed[header:], aad)
    except InvalidTag as exc:
        raise DecryptionError(
            f"{what} failed authentication: it was altered, or it belongs to another hospital or record"
        ) from exc


def wrap_key(master_key: bytes, data_key: bytes, hospital_id: str) -> bytes:
    return _seal(master_key, WRAP_MAGIC, data_key, b"neurofed:data-key:" + hospital_id.encode())


def unwrap_key(master_key: bytes, wrapped: bytes, hospital_id: str) -> bytes:
    return _open(master_key, WRAP_MAGIC, bytes(wrapped), b"neurofed:data-key:" + hospital_id.encode(), "data key")


def blob_associated_data(hospital_id: str, record_type: str, record_id: str) -> bytes:
    return f"neurofed:blob:v1:{hospital_id}:{record_type}:{record_id}".encode()


def encrypt_blob(data_key: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
    return _seal(data_key, BLOB_MAGIC, plaintext, associated_data)


def decrypt_blob(data_key: bytes, blob: bytes, associated_data: bytes) -> bytes:
    return _open(data_key, BLOB_MAGIC, blob, associated_data, "stored blob")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
