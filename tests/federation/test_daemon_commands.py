"""`manage.py federation_superlink` and `federation_node`: what they refuse, and what they hand the daemons,
before any Flower process starts (the daemons themselves are in test_tls_and_node_auth.py)."""

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from federation import conf, daemons
from hospitals.models import Hospital
from tests.factories import make_hospital


class Spawned(Exception):
    """Raised in place of starting a process: the command got as far as starting one."""


@pytest.fixture
def spawned(monkeypatch):
    """The command lines the commands would start; nothing is started."""
    commands = []

    def spawn(name, command, env, log_path):
        commands.append(command)
        raise Spawned(name)

    monkeypatch.setattr(daemons, "spawn", spawn)
    return commands


def _option(command, name):
    return command[command.index(name) + 1]


@pytest.fixture
def tls_folder(tmp_path):
    folder = tmp_path / "tls"
    folder.mkdir()
    for name in ("ca.crt", "server.pem", "server.key"):
        (folder / name).write_text("not read before the daemon starts")
    return folder


@pytest.mark.parametrize("address", ["0.0.0.0:9092", "[::]:9092", ":::9092", ":9092"])
def test_the_superlink_refuses_a_wildcard_address_at_once(settings, tls_folder, spawned, address):
    # It listens there and also connects back there (health check, its SuperExec, the workers' flwr
    # config): nothing can connect to a wildcard address, and no certificate names it.
    settings.FEDERATION_SUPERLINK_ADDRESS = address
    settings.FEDERATION_TLS_DIR = str(tls_folder)
    with pytest.raises(CommandError, match=r"wildcard.*federation_certs --hosts"):
        call_command("federation_superlink")
    assert spawned == []


def test_the_superlink_refuses_a_wildcard_address_option(tls_folder, spawned):
    with pytest.raises(CommandError, match="wildcard"):
        call_command("federation_superlink", "--address", "0.0.0.0:9092", "--tls-dir", str(tls_folder))
    assert spawned == []


def test_the_superlink_gets_absolute_certificate_paths_from_a_relative_tls_dir(monkeypatch, tls_folder, spawned):
    monkeypatch.chdir(tls_folder.parent)
    with pytest.raises(Spawned):
        call_command("federation_superlink", "--address", "localhost:9092", "--tls-dir", "tls")
    for option in ("--ssl-ca-certfile", "--ssl-certfile", "--ssl-keyfile"):
        path = Path(_option(spawned[0], option))
        assert path.is_absolute() and path.is_file()


def test_a_tls_dir_without_the_certificates_is_refused_before_anything_starts(tmp_path, spawned):
    (tmp_path / "tls").mkdir()
    (tmp_path / "tls" / "ca.crt").write_text("ca")
    with pytest.raises(CommandError, match=r"--tls-dir.*server\.pem"):
        call_command("federation_superlink", "--address", "localhost:9092", "--tls-dir", str(tmp_path / "tls"))
    assert spawned == []


@pytest.mark.parametrize("node_auth, said", [(True, "node authentication on"), (False, "node authentication off")])
def test_the_superlink_says_whether_it_authenticates_nodes(monkeypatch, settings, tls_folder, node_auth, said):
    class Started:
        log_path = Path("superlink.log")

    monkeypatch.setattr(daemons, "start_superlink", lambda *args, **kwargs: Started())
    monkeypatch.setattr(daemons, "supervise", lambda started: 0)
    settings.FEDERATION_NODE_AUTH = node_auth
    out = StringIO()
    with pytest.raises(SystemExit):
        call_command("federation_superlink", "--address", "localhost:9092", "--tls-dir", str(tls_folder),
                     stdout=out)
    assert said in out.getvalue()


def test_listening_on_every_interface_binds_the_wildcard_and_connects_locally(settings, tmp_path, tls_folder,
                                                                             spawned):
    """Nodes connect by the address; the SuperLink binds 0.0.0.0, and the `flwr` configuration the
    federation worker reads points at 127.0.0.1, which the certificate names."""
    settings.FEDERATION_HOME = tmp_path / "federation"
    settings.FEDERATION_SUPERLINK_LISTEN_ALL = True
    with pytest.raises(Spawned):
        call_command("federation_superlink", "--address", "fl.example.org:9443", "--tls-dir", str(tls_folder))
    assert (_option(spawned[0], "--host"), _option(spawned[0], "--port")) == ("0.0.0.0", "9443")
    cli_config = (settings.FEDERATION_HOME / "superlink" / "config.toml").read_text()
    assert 'address = "127.0.0.1:9443"' in cli_config


def test_listening_on_every_interface_without_tls_is_refused(spawned):
    with pytest.raises(CommandError, match=r"^Listening on every interface needs TLS: give --tls-dir"):
        call_command("federation_superlink", "--address", "127.0.0.1:9092", "--listen-all")
    assert spawned == []


@pytest.fixture
def opted_in(db):
    hospital = make_hospital("st-brigid")
    Hospital.objects.filter(pk=hospital.pk).update(federation_opt_in=True)
    return hospital


def test_a_node_gets_absolute_paths_from_relative_options(monkeypatch, tmp_path, opted_in, spawned):
    (tmp_path / "ca.crt").write_text("ca")
    (tmp_path / "st-brigid.key").write_text("key")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Spawned):
        call_command("federation_node", "--hospital", "st-brigid", "--superlink", "fl.example.org:9092",
                     "--root-certificates", "ca.crt", "--auth-key", "st-brigid.key")
    for option, name in (("--root-certificates", "ca.crt"), ("--auth-supernode-private-key", "st-brigid.key")):
        assert _option(spawned[0], option) == str(tmp_path.resolve() / name)


@pytest.mark.parametrize("option", ["--root-certificates", "--auth-key"])
def test_a_node_path_that_does_not_exist_is_refused_naming_the_option(monkeypatch, tmp_path, opted_in, spawned,
                                                                      option):
    (tmp_path / "ca.crt").write_text("ca")
    (tmp_path / "st-brigid.key").write_text("key")
    monkeypatch.chdir(tmp_path)
    given = {"--root-certificates": "ca.crt", "--auth-key": "st-brigid.key", option: "missing"}
    with pytest.raises(CommandError, match=rf"{option}.*missing"):
        call_command("federation_node", "--hospital", "st-brigid", "--superlink", "fl.example.org:9092",
                     *[part for pair in given.items() for part in pair])
    assert spawned == []


def test_a_node_refuses_a_wildcard_superlink(tmp_path, opted_in, spawned):
    (tmp_path / "ca.crt").write_text("ca")
    with pytest.raises(CommandError, match="wildcard"):
        call_command("federation_node", "--hospital", "st-brigid", "--superlink", "0.0.0.0:9092",
                     "--root-certificates", str(tmp_path / "ca.crt"))
    assert spawned == []


def test_the_demo_says_why_a_wildcard_address_is_refused(settings, spawned):
    settings.FEDERATION_SUPERLINK_ADDRESS = "0.0.0.0:9092"
    with pytest.raises(CommandError, match="FEDERATION_SUPERLINK_ADDRESS=0.0.0.0:9092: a wildcard"):
        call_command("federation_demo")
    assert spawned == []


@pytest.mark.parametrize("address, refused", [
    ("fl.example.org:9092", False), ("127.0.0.1:9092", False), ("[::1]:9092", False), ("10.0.0.5:9092", False),
    ("0.0.0.0:9092", True), ("[::]:9092", True), ("[::0]:9092", True), ("fl.example.org", True),
])
def test_which_superlink_addresses_are_refused(address, refused):
    assert bool(conf.address_problem(address)) == refused


@pytest.mark.django_db
def test_the_demo_starts_nothing_for_a_hospital_that_is_not_taking_part(opted_in, spawned):
    make_hospital("riverside", "Riverside")  # not opted in
    with pytest.raises(CommandError, match=r"--hospitals: nowhere, riverside are not a hospital that takes part in "
                                           r"federated learning .*nothing was started"):
        call_command("federation_demo", "--hospitals", "st-brigid, nowhere,riverside")
    assert spawned == []
    with pytest.raises(Spawned):
        call_command("federation_demo", "--hospitals", " st-brigid ")
