"""`manage.py federation_enrol_node`: what it refuses before it ever asks the SuperLink.

Enrolling and removing against a real SuperLink with node authentication is in test_tls_and_node_auth.py.
"""

from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from federation import pki
from tests.factories import make_hospital

pytestmark = pytest.mark.django_db


@pytest.fixture
def keys(tmp_path):
    return pki.make_node_key(tmp_path / "keys", "st-anne")


@pytest.mark.parametrize("arguments, message", [
    (["--hospital", "nowhere", "x.pub"], "No hospital 'nowhere'"),
    (["--hospital", "st-anne"], "Give the node's public key to enrol it, or --remove"),
    (["--hospital", "st-anne", "--remove", "x.pub"], "Give the node's public key to enrol it, or --remove"),
    (["--hospital", "st-anne", "missing.pub"], "No public key file at missing.pub"),
    (["--hospital", "st-anne", "--remove"], "st-anne has no enrolled node"),
])
def test_refusals_name_what_is_wrong(arguments, message):
    make_hospital("st-anne")
    with pytest.raises(CommandError, match=message):
        call_command("federation_enrol_node", *arguments)


def test_a_private_key_is_never_sent_to_the_superlink(keys):
    make_hospital("st-anne")
    private, _ = keys
    with pytest.raises(CommandError, match="is a private key: send and enrol only the public half"):
        call_command("federation_enrol_node", "--hospital", "st-anne", str(private))


def test_a_key_file_that_is_not_text_is_a_sentence_and_never_reaches_the_superlink(monkeypatch, tmp_path):
    from federation import control

    def superlink_asked(*args, **kwargs):
        raise AssertionError("the SuperLink was asked to register a file that is no key")

    make_hospital("st-anne")
    monkeypatch.setattr(control.subprocess, "run", superlink_asked)
    binary = tmp_path / "st-anne.pub"
    binary.write_bytes(b"\xff\xfe\x00\x81 not a key")
    with pytest.raises(CommandError, match=r"st-anne\.pub is not an OpenSSH public key \(it is not text\); enrol "
                                           r"the <name>\.pub file that federation_certs --node wrote"):
        call_command("federation_enrol_node", "--hospital", "st-anne", str(binary))


@pytest.mark.parametrize("key_text, found", [
    ("", ""), ("garbage, not a key", ""), ("ssh-ed25519 AAAA broken", ""), (None, " but an Ed25519 key")])
def test_a_key_that_is_not_an_elliptic_curve_key_is_a_sentence_and_never_reaches_the_superlink(
        monkeypatch, tmp_path, key_text, found):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from federation import control

    def superlink_asked(*args, **kwargs):
        raise AssertionError("the SuperLink was asked to register a key it cannot use")

    make_hospital("st-anne")
    monkeypatch.setattr(control.subprocess, "run", superlink_asked)
    if key_text is None:
        key_text = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    public = tmp_path / "st-anne.pub"
    public.write_text(key_text)
    with pytest.raises(CommandError, match=rf"st-anne\.pub is not an elliptic-curve \(ECDSA\) public key{found}; "
                                           r"enrol the <name>\.pub file that federation_certs --node wrote"):
        call_command("federation_enrol_node", "--hospital", "st-anne", str(public))


def test_a_relative_key_path_reaches_flwr_as_an_absolute_one(monkeypatch, tmp_path, keys):
    # flwr runs in the project's folder, not where the coordinator typed the command.
    import subprocess

    from federation import control
    from federation.models import NodeEnrolment

    make_hospital("st-anne")
    _, public = keys
    commands = []

    def run(command, **kwargs):
        commands.append(command)
        return subprocess.CompletedProcess(command, 0, stdout='{"success": true, "node-id": 7}', stderr="")

    monkeypatch.setattr(control.subprocess, "run", run)
    monkeypatch.chdir(public.parent)
    call_command("federation_enrol_node", "--hospital", "st-anne", public.name)
    registered = Path(commands[0][commands[0].index("register") + 1])
    assert registered.is_absolute() and registered == public.resolve()
    assert NodeEnrolment.objects.get(hospital__slug="st-anne").node_id == "7"


def test_enrolling_over_an_enrolment_says_how_to_replace_it(keys):
    from federation.models import NodeEnrolment

    hospital = make_hospital("st-anne")
    NodeEnrolment.objects.create(hospital=hospital, node_id="42", public_key="the old key")
    _, public = keys
    with pytest.raises(CommandError, match=r"already has an enrolled node \(42\).*federation_enrol_node "
                                           r"--hospital st-anne --remove\), then enrol the new key"):
        call_command("federation_enrol_node", "--hospital", "st-anne", str(public))
