"""Keys and blobs under the conditions an operator or a crash brings: a key file of the wrong kind,
a rename that must outlive a power cut, a hospital made mid-rotation by a process on the old key."""

import io
import secrets

import pytest
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db


def test_a_raw_binary_key_file_is_refused_clearly_without_showing_its_bytes(settings, tmp_path):
    """`head -c 32 /dev/urandom > master.key` is an easy mistake; the error must say what is wrong, as
    the configuration error every caller handles, and must not print a byte of the key."""
    raw = bytes([0xBB]) + secrets.token_bytes(31)
    key_file = tmp_path / "master.key"
    key_file.write_bytes(raw)
    settings.MASTER_KEY, settings.MASTER_KEY_FILE = "", str(key_file)
    with pytest.raises(CommandError) as caught:
        call_command("rotate_master_key", stdout=io.StringIO(), stderr=io.StringIO())
    message = str(caught.value)
    assert "NEUROFED_MASTER_KEY_FILE" in message and "base64" in message
    assert "0xbb" not in message.lower()
    # Nor anywhere in the chain a log handler would print.
    cause = caught.value
    while cause is not None:
        assert "0xbb" not in str(cause).lower(), cause
        cause = cause.__cause__ or (None if cause.__suppress_context__ else cause.__context__)


def test_an_unreadable_key_file_is_a_configuration_error(settings, tmp_path):
    settings.MASTER_KEY, settings.MASTER_KEY_FILE = "", str(tmp_path)  # a folder, not a file
    with pytest.raises(CommandError, match="NEUROFED_MASTER_KEY_FILE"):
        call_command("rotate_master_key", stdout=io.StringIO(), stderr=io.StringIO())
