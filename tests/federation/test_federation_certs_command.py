"""federation_certs: existing keys are kept unless --force; private keys are written 0600."""
import stat
from io import StringIO

import pytest
from django.core.management import CommandError, call_command


def _contents(folder):
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_an_existing_ca_and_server_key_are_not_replaced_without_force(tmp_path):
    call_command("federation_certs", "--out", str(tmp_path), "--hosts", "fl.example.org")
    before = _contents(tmp_path)
    assert set(before) == {"ca.crt", "ca.key", "server.pem", "server.key"}
    with pytest.raises(CommandError, match=r"ca\.key.*already exist.*cut off every node.*--force"):
        call_command("federation_certs", "--out", str(tmp_path), "--hosts", "fl.example.org")
    assert _contents(tmp_path) == before
    call_command("federation_certs", "--out", str(tmp_path), "--hosts", "fl.example.org", "--force")
    after = _contents(tmp_path)
    assert set(after) == set(before) and after["ca.key"] != before["ca.key"]


def test_one_leftover_file_is_enough_to_refuse(tmp_path):
    (tmp_path / "server.key").write_bytes(b"the key in use")
    with pytest.raises(CommandError, match="server.key"):
        call_command("federation_certs", "--out", str(tmp_path), "--hosts", "fl.example.org")
    assert _contents(tmp_path) == {"server.key": b"the key in use"}


def test_an_existing_node_key_is_not_replaced_without_force(tmp_path):
    call_command("federation_certs", "--out", str(tmp_path), "--node", "st-brigid")
    before = _contents(tmp_path)
    with pytest.raises(CommandError, match=r"st-brigid\.key.*registered with the coordinator.*--force"):
        call_command("federation_certs", "--out", str(tmp_path), "--node", "st-brigid")
    assert _contents(tmp_path) == before
    call_command("federation_certs", "--out", str(tmp_path), "--node", "st-helier")  # another node is fine
    assert set(_contents(tmp_path)) == {"st-brigid.key", "st-brigid.pub", "st-helier.key", "st-helier.pub"}


def test_a_node_name_that_is_a_path_is_refused(tmp_path):
    with pytest.raises(CommandError, match="plain name"):
        call_command("federation_certs", "--out", str(tmp_path / "keys"), "--node", "../elsewhere")
    assert not any(tmp_path.iterdir())


def test_private_keys_are_0600_even_over_a_world_readable_file(tmp_path):
    for name in ("ca.key", "server.key", "st-brigid.key"):
        (tmp_path / name).write_bytes(b"old")
        (tmp_path / name).chmod(0o644)
    call_command("federation_certs", "--out", str(tmp_path), "--hosts", "fl.example.org", "--force")
    call_command("federation_certs", "--out", str(tmp_path), "--node", "st-brigid", "--force")
    assert {name: _mode(tmp_path / name) for name in ("ca.key", "server.key", "st-brigid.key")} == \
        {"ca.key": 0o600, "server.key": 0o600, "st-brigid.key": 0o600}
    assert _mode(tmp_path / "ca.crt") == 0o644 and _mode(tmp_path / "st-brigid.pub") == 0o644
    assert not list(tmp_path.glob(".*partial"))


def test_a_node_key_comes_with_how_the_coordinator_enrols_it(tmp_path):
    # A key registered with plain `flwr supernode register` is bound to no hospital: the ServerApp
    # refuses that node as unenrolled.
    out = StringIO()
    call_command("federation_certs", "--out", str(tmp_path), "--node", "st-brigid", stdout=out)
    assert "python manage.py federation_enrol_node --hospital" in out.getvalue()
    assert "st-brigid.pub" in out.getvalue() and "flwr supernode register" not in out.getvalue()


def test_a_folder_that_cannot_be_written_is_a_sentence_not_a_refusal_to_replace(tmp_path):
    taken = tmp_path / "certs"
    taken.write_bytes(b"a file, not a folder")
    for extra in (["--hosts", "fl.example.org"], ["--hosts", "fl.example.org", "--force"], ["--node", "st-brigid"]):
        with pytest.raises(CommandError, match=r"--out .*certs is a file, not a folder") as refused:
            call_command("federation_certs", "--out", str(taken), *extra)
        assert "already exist" not in str(refused.value)
    with pytest.raises(CommandError, match=r"Cannot write the keys into --out /proc/nope: .*Nothing was changed"):
        call_command("federation_certs", "--out", "/proc/nope", "--hosts", "fl.example.org")
    assert taken.read_bytes() == b"a file, not a folder"


def test_a_forced_replacement_that_fails_part_way_keeps_the_whole_previous_set(tmp_path, monkeypatch):
    # A new CA key beside the old certificate, or the old CA beside a new server key, cuts off every node.
    from federation import pki

    call_command("federation_certs", "--out", str(tmp_path), "--hosts", "fl.example.org")
    before = _contents(tmp_path)
    real_write = pki._write

    def disk_full_at_the_server_certificate(path, data, private=False):
        if path.name == "server.pem":
            raise OSError(28, "No space left on device")
        return real_write(path, data, private)

    monkeypatch.setattr(pki, "_write", disk_full_at_the_server_certificate)
    with pytest.raises(CommandError, match="No space left on device. Nothing was changed"):
        call_command("federation_certs", "--out", str(tmp_path), "--hosts", "fl.example.org", "--force")
    assert _contents(tmp_path) == before  # and no staging folder left beside them


def test_host_names_are_trimmed_and_one_that_is_no_host_name_is_refused(tmp_path):
    from cryptography import x509

    call_command("federation_certs", "--out", str(tmp_path / "ok"), "--hosts", "fl.example.org, 10.0.0.5 ,")
    certificate = x509.load_pem_x509_certificate((tmp_path / "ok" / "server.pem").read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "fl.example.org" in names.get_values_for_type(x509.DNSName)
    assert all(name.strip() == name for name in names.get_values_for_type(x509.DNSName))
    assert "10.0.0.5" in [str(ip) for ip in names.get_values_for_type(x509.IPAddress)]
    long_name = "a" * 60 + ".example.org"  # past a common name's 64 characters
    call_command("federation_certs", "--out", str(tmp_path / "more"), "--hosts",
                 f"{long_name},*.fl.example.org,neurofed_superlink")
    certificate = x509.load_pem_x509_certificate((tmp_path / "more" / "server.pem").read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {long_name, "*.fl.example.org", "neurofed_superlink"} <= set(names.get_values_for_type(x509.DNSName))
    with pytest.raises(CommandError, match=r"--hosts: 'bad host name!' is neither a DNS name nor an IP address"):
        call_command("federation_certs", "--out", str(tmp_path / "bad"), "--hosts", "fl.example.org,bad host name!")
    assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").iterdir())
