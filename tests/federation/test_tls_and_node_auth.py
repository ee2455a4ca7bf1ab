"""Several sites: the SuperLink speaks TLS only and accepts only nodes whose public key was registered."""

import time

import pytest
from django.core.management import call_command

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


def _accepts_connections(host: str, port: int) -> bool:
    import socket

    try:
        socket.create_connection((host, port), timeout=2).close()
        return True
    except OSError:
        return False


def test_a_superlink_listening_on_every_interface_serves_a_run_to_nodes_that_connect_by_name(federation,
                                                                                                tmp_path):
    """A coordinator in a container: it binds 0.0.0.0, nodes connect over TLS by a name on its certificate,
    and its own SuperExec starts the run's ServerApp through 127.0.0.1. The run over A and B (A's node
    alone connected) gets as far as the ServerApp's node check."""
    from federation.models import FederatedRun, RunStatus
    from federation.tasks import follow_run
    from tests.federation.conftest import seed_hospital

    a, b = seed_hospital("fl-a", per_class=1, offset=0), seed_hospital("fl-b", per_class=0, offset=0)
    certs = pki.make_superlink_certificates(tmp_path / "tls", ["fl-coordinator.test"])
    tls = daemons.Tls(ca=certs["ca"], cert=certs["cert"], key=certs["key"])
    home, env = federation.home, {**federation.env, "FEDERATION_NODE_WAIT_S": "10"}
    port = daemons.free_port()
    federation.superlink = daemons.start_superlink(home, host="fl-coordinator.test", port=port, tls=tls,
                                                   env_extra=env, listen_all=True)
    # Every address of the loopback network reaches a socket bound to 0.0.0.0, not only 127.0.0.1.
    assert _accepts_connections("127.0.0.2", port)
    # The nodes reach it by a name on its certificate. fl-coordinator.test resolves nowhere here, so the
    # run below also shows that the coordinator never connects to its own public name.
    federation.nodes["a"] = daemons.start_node(home, hospital_slug="fl-a", superlink=f"localhost:{port}",
                                               tls=tls, env_extra=env)
    assert wait_for(lambda: control.online_nodes(home), timeout=60), federation.logs()

    run = FederatedRun.objects.create(num_rounds=1, local_epochs=1, batch_size=8, image_size=32, model_width=4,
                                      validation_per_class=1, min_nodes=2)
    run.hospitals.set([a, b])
    assert follow_run(run.pk, poll_s=0.5) == RunStatus.FAILED
    run.refresh_from_db()
    assert "Only 1 of the 2 nodes this run needs were connected" in run.failure_reason, federation.logs()
    assert "connected: fl-a" in run.failure_reason


def test_an_enrolled_node_serves_only_the_hospital_its_key_was_enrolled_for(federation, tmp_path):
    """A and B enrol one node each. B's key, started claiming to be A's node, is refused: the run over
    A and B sees one node and fails with the reason, before any case is read."""
    from federation.models import FederatedRun, NodeEnrolment, RunStatus
    from federation.services import enrol_node
    from federation.tasks import follow_run
    from hospitals.errors import DomainError
    from tests.federation.conftest import seed_hospital

    a, b = seed_hospital("fl-a", per_class=1, offset=0), seed_hospital("fl-b", per_class=0, offset=0)
    certs = pki.make_superlink_certificates(tmp_path / "tls", ["127.0.0.1"])
    tls = daemons.Tls(ca=certs["ca"], cert=certs["cert"], key=certs["key"])
    key_a, pub_a = pki.make_node_key(tmp_path / "keys", "fl-a")
    key_b, pub_b = pki.make_node_key(tmp_path / "keys", "fl-b")
    home, env = federation.home, {**federation.env, "FEDERATION_NODE_WAIT_S": "10"}
    address = f"127.0.0.1:{daemons.free_port()}"
    federation.superlink = daemons.start_superlink(home, port=int(address.split(":")[1]), tls=tls, node_auth=True,
                                                   env_extra=env)

    call_command("federation_enrol_node", "--hospital", "fl-a", str(pub_a))
    enrol_node(hospital=b, public_key=pub_b)
    with pytest.raises(DomainError) as second:
        enrol_node(hospital=a, public_key=pub_b)
    assert second.value.code == "node_enrolled" and second.value.status == 409
    b_node = NodeEnrolment.objects.get(hospital=b).node_id

    federation.nodes["a"] = daemons.start_node(home, hospital_slug="fl-a", superlink=address, tls=tls,
                                               auth_key=key_a, env_extra=env)
    federation.nodes["impostor"] = daemons.start_node(home, hospital_slug="fl-a", superlink=address, tls=tls,
                                                      auth_key=key_b, env_extra=env, name="impostor")
    assert wait_for(lambda: len(control.online_nodes(home)) == 2, timeout=60), federation.logs()
    run = FederatedRun.objects.create(num_rounds=1, image_size=32, model_width=4, validation_per_class=1, min_nodes=2)
    run.hospitals.set([a, b])

    assert follow_run(run.pk, poll_s=0.5, home=home) == RunStatus.FAILED, federation.logs()
    run.refresh_from_db()
    assert "Only 1 of the 2 nodes this run needs" in run.failure_reason, run.failure_reason
    assert "(connected: fl-a)" in run.failure_reason
    assert f"Node {b_node} was refused: it says it serves fl-a but its key is enrolled for fl-b" in run.failure_reason
    assert not run.rounds.exists()

    # B's key leaked (it was just used to impersonate A): removing the enrolment unregisters it, and the
    # impostor holding it drops off the SuperLink.
    call_command("federation_enrol_node", "--hospital", "fl-b", "--remove")
    assert not NodeEnrolment.objects.filter(hospital=b).exists()
    assert wait_for(lambda: b_node not in control.online_nodes(home), timeout=60), federation.logs()



def _node_auth_superlink(federation, tmp_path):
    certs = pki.make_superlink_certificates(tmp_path / "tls", ["127.0.0.1"])
    tls = daemons.Tls(ca=certs["ca"], cert=certs["cert"], key=certs["key"])
    federation.superlink = daemons.start_superlink(federation.home, port=daemons.free_port(), tls=tls, node_auth=True,
                                                   env_extra=federation.env)


def _statuses_of_nodes_named(home, name):
    from flwr.proto.control_pb2 import ListNodesRequest

    with control._control_client(home) as client:
        return [n.status for n in client.ListNodes(ListNodesRequest()).nodes_info if n.name == name]


def _hold_the_hospital(hospital, *, until, enrol_node_id=None):
    """Another transaction holding the hospital's row, as a role change or a run start would, until
    `until()` is true (at most 30 s) or never; returns (started thread, held event, until-was-met event)."""
    import threading

    from django.db import connection, transaction

    from federation.models import NodeEnrolment
    from hospitals.models import Hospital

    holding, met = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                Hospital.objects.select_for_update().get(pk=hospital.pk)
                if enrol_node_id:
                    NodeEnrolment.objects.create(hospital=hospital, node_id=enrol_node_id, public_key="another key")
                holding.set()
                if wait_for(until, timeout=30):
                    met.set()
        finally:
            holding.set()
            connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    assert holding.wait(timeout=30)
    return thread, met


def test_an_enrolment_that_loses_its_hospital_to_another_unregisters_the_key_it_registered(federation, tmp_path):
    """The SuperLink is asked while nothing of the hospital is locked: another transaction holding the
    hospital's row and enrolling a node for it does not hold up the registration. That other enrolment
    keeps the row; the key the losing one registered is unregistered again, so no key stays registered
    that `--remove` could not find."""
    from federation.models import NodeEnrolment
    from federation.services import enrol_node
    from hospitals.errors import DomainError
    from tests.factories import make_hospital

    hospital = make_hospital("fl-c")
    _, pub = pki.make_node_key(tmp_path / "keys", "fl-c")
    _node_auth_superlink(federation, tmp_path)

    other, registered_meanwhile = _hold_the_hospital(
        hospital, enrol_node_id="4242", until=lambda: _statuses_of_nodes_named(federation.home, "fl-c"))
    with pytest.raises(DomainError) as lost:
        enrol_node(hospital=hospital, public_key=pub)
    other.join(timeout=60)

    assert registered_meanwhile.is_set(), "the SuperLink was not asked while the hospital's row was locked"
    assert (lost.value.code, lost.value.status) == ("node_enrolled", 409) and "(4242)" in lost.value.detail
    assert list(NodeEnrolment.objects.values_list("node_id", flat=True)) == ["4242"]
    assert _statuses_of_nodes_named(federation.home, "fl-c") == ["unregistered"], federation.logs()


def test_removing_an_enrolment_does_not_wait_on_the_hospitals_row(federation, tmp_path):
    from federation.models import NodeEnrolment
    from federation.services import enrol_node, unenrol_node
    from hospitals.models import AuditEvent
    from tests.factories import make_hospital

    hospital = make_hospital("fl-d")
    _, pub = pki.make_node_key(tmp_path / "keys", "fl-d")
    _node_auth_superlink(federation, tmp_path)
    enrol_node(hospital=hospital, public_key=pub)

    other, unregistered_meanwhile = _hold_the_hospital(
        hospital, until=lambda: _statuses_of_nodes_named(federation.home, "fl-d") == ["unregistered"])
    unenrol_node(hospital=hospital)
    other.join(timeout=60)

    assert unregistered_meanwhile.is_set(), "the SuperLink was not asked while the hospital's row was locked"
    assert not NodeEnrolment.objects.filter(hospital=hospital).exists()
    assert AuditEvent.objects.filter(hospital_id=hospital.pk, action="federation.node_unenrol").count() == 1
