"""Where the master key comes from, and each hospital's data key under it (envelope encryption).

The master key is read from NEUROFED_MASTER_KEY (base64) or NEUROFED_MASTER_KEY_FILE. During a
rotation the key being retired is given as NEUROFED_PREVIOUS_MASTER_KEY(_FILE), so data keys wrapped by
either can be opened until `manage.py rotate_master_key` has rewrapped them all.
"""

import base64
import binascii
import hmac
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from hospitals import crypto


def _decode_key(text: str, source: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImproperlyConfigured(f"{source} is not valid base64") from exc
    if len(key) != crypto.KEY_BYTES:
        raise ImproperlyConfigured(f"{source} must decode to 32 bytes, not {len(key)}")
    return key


def _read_key(value: str, file_path: str, name: str) -> bytes | None:
    if value:
        return _decode_key(value, name)
    if file_path:
        path = Path(file_path)
        if not path.exists():
            raise ImproperlyConfigured(f"{name}_FILE points to {path}, which does not exist")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE points to {path}, which cannot be read ({exc.strerror})") from None
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError:
            # Raw key bytes, not base64. The decoder's own message would quote a byte of the key.
            raise ImproperlyConfigured(f"{name}_FILE holds binary data; it must hold the key as base64 text") from None
        return _decode_key(text, f"{name}_FILE")
    return None


def current_master_key() -> bytes:
    key = _read_key(settings.MASTER_KEY, settings.MASTER_KEY_FILE, "NEUROFED_MASTER_KEY")
    if key is None:
        raise ImproperlyConfigured("No master key configured (NEUROFED_MASTER_KEY or NEUROFED_MASTER_KEY_FILE)")
    return key


def previous_master_key() -> bytes | None:
    return _read_key(
        getattr(settings, "PREVIOUS_MASTER_KEY", ""),
        getattr(settings, "PREVIOUS_MASTER_KEY_FILE", ""),
        "NEUROFED_PREVIOUS_MASTER_KEY",
    )


def known_master_keys() -> dict[str, bytes]:
    keys = {}
    for key in (current_master_key(), previous_master_key()):
        if key is not None:
            keys[crypto.key_id(key)] = key
    return keys


def hospitals_without_their_master_key() -> list[tuple[str, str]]:
    """(slug, master key id) of each hospital whose data key no configured master key wraps: a restore under
    another key set, or a rotation's previous key dropped too soon. A deleted hospital's key is gone by design."""
    from hospitals.models import Hospital

    return list(Hospital.objects.exclude(wrapped_data_key=b"").exclude(master_key_id__in=list(known_master_keys()))
                .order_by("slug").values_list("slug", "master_key_id"))


def named_with_their_master_keys(hospitals: list[tuple[str, str]]) -> str:
    """(slug, master key id) pairs as logs and commands name them."""
    return ", ".join(f"{slug} (master key {key_id})" for slug, key_id in hospitals)


def new_wrapped_data_key(hospital_id: str) -> tuple[bytes, str]:
    """A fresh data key for a new hospital, wrapped under the current master key."""
    master = current_master_key()
    return crypto.wrap_key(master, crypto.generate_data_key(), hospital_id), crypto.key_id(master)


def hospital_data_key(hospital) -> bytes:
    if not hospital.wrapped_data_key:
        raise crypto.DecryptionError(f"hospital {hospital.slug} has no data key (it was destroyed)")
    master = known_master_keys().get(hospital.master_key_id)
    if master is None:
        raise ImproperlyConfigured(
            f"hospital {hospital.slug}'s data key is wrapped by master key {hospital.master_key_id}, "
            "which is not configured; set NEUROFED_PREVIOUS_MASTER_KEY to it and run rotate_master_key"
        )
    return crypto.unwrap_key(master, hospital.wrapped_data_key, str(hospital.id))


def rewrap_data_key(hospital) -> bool:
    """Rewrap one hospital's data key under the current master key. True when it changed."""
    master = current_master_key()
    if hospital.master_key_id == crypto.key_id(master):
        return False
    data_key = hospital_data_key(hospital)
    hospital.wrapped_data_key = crypto.wrap_key(master, data_key, str(hospital.id))
    hospital.master_key_id = crypto.key_id(master)
    return True


def normalised_mrn(medical_record_number: str) -> str:
    """An MRN as records are matched by: the same number typed with other case or spaces is one number."""
    return medical_record_number.strip().upper()


def mrn_digest(hospital, medical_record_number: str) -> str:
    """Keyed digest of an MRN for lookups; keyed by the hospital's data key, so it is per tenant."""
    if not medical_record_number:
        return ""
    return hmac.new(
        hospital_data_key(hospital), b"mrn:" + normalised_mrn(medical_record_number).encode(), "sha256"
    ).hexdigest()
