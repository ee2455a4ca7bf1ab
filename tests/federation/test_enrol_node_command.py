"""`manage.py federation_enrol_node`: what it refuses before it ever asks the SuperLink.

Enrolling and removing against a real SuperLink with node authentication is in test_tls_and_node_auth.py.
"""

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
