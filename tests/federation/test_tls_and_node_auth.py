"""Several sites: the SuperLink speaks TLS only and accepts only nodes whose public key was registered."""

import time

import pytest

from federation import control, daemons, pki

pytestmark = [pytest.mark.flower, pytest.mark.slow, pytest.mark.timeout(180)]


def wait_for(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    return predicate()


def test_registered_node_connects_over_tls_and_others_are_refused(federation, tmp_path):
    certs = pki.make_superlink_certificates(tmp_path / "tls", ["127.0.0.1"])
    tls = daemons.Tls(ca=certs["ca"], cert=certs["cert"], key=certs["key"])
    good_key, good_pub = pki.make_node_key(tmp_path / "keys", "tls-a")
    rogue_key, _ = pki.make_node_key(tmp_path / "keys", "rogue")
    home, env = federation.home, federation.env
    port = daemons.free_port()
    address = f"127.0.0.1:{port}"
    federation.superlink = daemons.start_superlink(home, port=port, tls=tls, node_auth=True, env_extra=env)

    registered_id = control.register_node(home, good_pub, name="tls-a")
    assert registered_id
    federation.nodes["good"] = daemons.start_node(home, hospital_slug="tls-a", superlink=address, tls=tls,
                                                  auth_key=good_key, env_extra=env)
    federation.nodes["rogue"] = daemons.start_node(home, hospital_slug="rogue", superlink=address, tls=tls,
                                                   auth_key=rogue_key, env_extra=env, warm=False)
    federation.nodes["plain"] = daemons.start_node(home, hospital_slug="plain", superlink=address, env_extra=env,
                                                   warm=False)

    online = wait_for(lambda: control.online_nodes(home), timeout=60)
    assert online == [registered_id], federation.logs()
    time.sleep(5)  # the others had time to try
    assert control.online_nodes(home) == [registered_id]
    rogue_log = federation.nodes["rogue"].log_path.read_text(errors="replace")
    plain_log = federation.nodes["plain"].log_path.read_text(errors="replace")
    assert "SuperNode ID" not in rogue_log and "SuperNode ID" not in plain_log
