"""hospitals/crypto.py: the envelope primitives, over bytes only."""

import pytest

from hospitals import crypto


@pytest.fixture
def key():
    return crypto.generate_data_key()


def aad(hospital="h1", record_type="scan", record_id="42"):
    return crypto.blob_associated_data(hospital, record_type, record_id)


def test_round_trip_and_fresh_nonce_each_time(key):
    one, two = crypto.encrypt_blob(key, b"payload", aad()), crypto.encrypt_blob(key, b"payload", aad())
    assert one != two and one.startswith(crypto.BLOB_MAGIC)
    assert crypto.decrypt_blob(key, one, aad()) == crypto.decrypt_blob(key, two, aad()) == b"payload"


def test_every_single_flipped_bit_after_the_header_is_detected(key):
    sealed = crypto.encrypt_blob(key, b"x" * 40, aad())
    for position in range(len(crypto.BLOB_MAGIC), len(sealed)):
        tampered = bytearray(sealed)
        tampered[position] ^= 0x01
        with pytest.raises(crypto.DecryptionError):
            crypto.decrypt_blob(key, bytes(tampered), aad())


@pytest.mark.parametrize(
    "other", [aad(hospital="h2"), aad(record_type="mask"), aad(record_id="43"), b""]
)
def test_associated_data_binds_the_blob(key, other):
    sealed = crypto.encrypt_blob(key, b"payload", aad())
    with pytest.raises(crypto.DecryptionError, match="another hospital or record"):
        crypto.decrypt_blob(key, sealed, other)


def test_wrong_key_and_truncation_fail_clearly(key):
    sealed = crypto.encrypt_blob(key, b"payload", aad())
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt_blob(crypto.generate_data_key(), sealed, aad())
    with pytest.raises(crypto.DecryptionError, match="truncated"):
        crypto.decrypt_blob(key, sealed[:20], aad())
    with pytest.raises(crypto.DecryptionError, match="format"):
        crypto.decrypt_blob(key, b"XX1" + sealed[3:], aad())


def test_key_length_is_enforced():
    with pytest.raises(ValueError):
        crypto.encrypt_blob(b"short", b"x", aad())


def test_wrapped_key_is_bound_to_its_hospital(key):
    master = crypto.generate_data_key()
    wrapped = crypto.wrap_key(master, key, "hospital-1")
    assert key not in wrapped
    assert crypto.unwrap_key(master, wrapped, "hospital-1") == key
    with pytest.raises(crypto.DecryptionError):
        crypto.unwrap_key(master, wrapped, "hospital-2")
    with pytest.raises(crypto.DecryptionError):
        crypto.unwrap_key(crypto.generate_data_key(), wrapped, "hospital-1")


def test_key_id_is_a_stable_short_fingerprint(key):
    assert crypto.key_id(key) == crypto.key_id(bytes(key)) and len(crypto.key_id(key)) == 16
    assert crypto.key_id(key) != crypto.key_id(crypto.generate_data_key())
