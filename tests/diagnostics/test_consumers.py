"""The scan and worklist sockets (diagnostics/consumers.py) while access changes under an open socket.

The connect-time checks are tried over a real server in test_pipeline_worker.py; here the events come
from the scan services' own pushes, through the Redis channel layer, to a socket whose user is then
removed, demoted or deactivated.
"""

import json

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from diagnostics import services
from diagnostics.routing import websocket_urlpatterns
from hospitals import services as hospital_services
from hospitals.models import Membership, Role
from tests.diagnostics import samples
from tests.diagnostics.conftest import purge_diagnostics_queue
from tests.diagnostics.helpers import patient_of

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def scan(world):
    """A committed, queued scan of patient A1; its analysis task is left in the broker and dropped after."""
    stored, _ = services.upload_scan(hospital=world.a, patient=patient_of(world.owner, world.a),
                                     data=samples.jpeg_bytes("glioma", 3), uploaded_by=world.owner)
    yield stored
    purge_diagnostics_queue()


def _remove(world, user):
    hospital_services.remove_member(hospital=world.a, membership=Membership.objects.get(user=user, hospital=world.a),
                                    actor=world.admin_a)


def _demote(world, user):
    hospital_services.change_role(hospital=world.a, membership=Membership.objects.get(user=user, hospital=world.a),
                                  role=Role.PATIENT, actor=world.admin_a)


def _deactivate(world, user):
    user.is_active = False
    user.save(update_fields=["is_active"])


def _watch_while(user, path, scan, change, first_event=None, session=None):
    """Connect, see one event relayed, make the change, trigger another event; what the socket gets then."""

    async def scenario():
        communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
        communicator.scope["user"] = user
        if session is not None:
            communicator.scope["session"] = session
        connected, _ = await communicator.connect()
        assert connected
        if first_event is not None:
            assert (await communicator.receive_json_from(timeout=5))["event"] == first_event
        await sync_to_async(services.start_analysis)(scan.id)
        assert (await communicator.receive_json_from(timeout=5))["status"] == "processing"
        await sync_to_async(change)()
        await sync_to_async(services.fail_scan)(scan.id, "unreadable", "test")
        output = await communicator.receive_output(timeout=5)
        await communicator.disconnect()
        return output

    return async_to_sync(scenario)()


@pytest.mark.parametrize("change, code", [(_remove, 4404), (_demote, 4403), (_deactivate, 4404)])
def test_a_doctor_who_loses_access_has_the_worklist_closed_at_the_next_event(world, scan, change, code):
    output = _watch_while(world.doctor_a2, f"/ws/hospitals/{world.a.slug}/worklist/", scan,
                          lambda: change(world, world.doctor_a2))
    assert output == {"type": "websocket.close", "code": code}


def test_a_colleague_keeps_the_worklist_while_another_doctor_is_removed(world, scan):
    output = _watch_while(world.doctor_a, f"/ws/hospitals/{world.a.slug}/worklist/", scan,
                          lambda: _remove(world, world.doctor_a2))
    assert output["type"] == "websocket.send" and json.loads(output["text"])["status"] == "failed"


def test_a_patient_removed_from_the_hospital_stops_hearing_about_their_scan(world, scan):
    output = _watch_while(world.owner, f"/ws/hospitals/{world.a.slug}/scans/{scan.id}/", scan,
                          lambda: _remove(world, world.owner), first_event="scan.status")
    assert output == {"type": "websocket.close", "code": 4404}


def _signed_in(user):
    """A real sign-in: the client that holds it, and its session as the socket's handshake loads it."""
    from importlib import import_module

    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client, import_module(settings.SESSION_ENGINE).SessionStore(session_key=client.session.session_key)


def test_a_socket_whose_sign_in_ended_is_closed_as_signed_out(world, scan):
    client, session = _signed_in(world.owner)
    # Signed out in another tab: the page is told so (4401), not that its scan was removed (4404).
    output = _watch_while(world.owner, f"/ws/hospitals/{world.a.slug}/scans/{scan.id}/", scan, client.logout,
                          first_event="scan.status", session=session)
    assert output == {"type": "websocket.close", "code": 4401}


def test_a_socket_whose_sign_in_holds_keeps_its_events(world, scan):
    client, session = _signed_in(world.doctor_a)
    output = _watch_while(world.doctor_a, f"/ws/hospitals/{world.a.slug}/worklist/", scan, lambda: None,
                          session=session)
    assert output["type"] == "websocket.send" and json.loads(output["text"])["status"] == "failed"


def test_a_socket_opened_without_a_sign_in_is_closed_as_signed_out(world, scan):
    from django.contrib.auth.models import AnonymousUser

    async def scenario():
        communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns),
                                             f"/ws/hospitals/{world.a.slug}/scans/{scan.id}/")
        communicator.scope["user"] = AnonymousUser()
        connected, _ = await communicator.connect()
        output = await communicator.receive_output(timeout=5)
        await communicator.disconnect()
        return connected, output

    assert async_to_sync(scenario)() == (True, {"type": "websocket.close", "code": 4401})


def test_a_change_while_the_socket_opens_is_relayed_after_the_state_it_sends_never_lost(world, scan, monkeypatch):
    from diagnostics.consumers import ScanConsumer

    read_state = ScanConsumer.state_now

    def state_after_a_change(self):
        services.start_analysis(scan.id)  # lands between joining the scan's group and reading its state
        return read_state(self)

    monkeypatch.setattr(ScanConsumer, "state_now", state_after_a_change)

    async def scenario():
        communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns),
                                             f"/ws/hospitals/{world.a.slug}/scans/{scan.id}/")
        communicator.scope["user"] = world.owner
        connected, _ = await communicator.connect()
        assert connected
        first = await communicator.receive_json_from(timeout=5)
        relayed = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return first, relayed

    first, relayed = async_to_sync(scenario)()
    assert (first["event"], first["status"]) == ("scan.status", "processing")
    assert relayed["status"] == "processing"


def test_events_queued_behind_the_one_that_closes_the_socket_are_dropped_quietly(world, scan):
    # Scan events come in bursts (status, then result): once the first has closed the socket of a removed
    # doctor, the others already in its channel must not crash the consumer on a group it has left.
    from channels.layers import get_channel_layer

    from diagnostics.notify import worklist_group

    async def scenario():
        communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/hospitals/{world.a.slug}/worklist/")
        communicator.scope["user"] = world.doctor_a2
        connected, _ = await communicator.connect()
        assert connected
        await sync_to_async(_remove)(world, world.doctor_a2)
        layer = get_channel_layer()
        event = {"type": "scan.event", "event": "scan.status", "scan": str(scan.id), "status": "processing"}
        for _ in range(3):
            await layer.group_send(worklist_group(world.a.pk), event)
        output = await communicator.receive_output(timeout=5)
        assert await communicator.receive_nothing(timeout=1)  # raises what the consumer raised, if it did
        await communicator.disconnect()
        return output

    assert async_to_sync(scenario)() == {"type": "websocket.close", "code": 4404}


def test_what_a_client_sends_is_ignored_whatever_it_is_and_the_socket_goes_on(world, scan):
    """A frame that is not JSON, or a binary one, raised in the consumer before: the socket ended without its
    disconnect, and its channel stayed in the scan's group."""

    async def scenario():
        communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns),
                                             f"/ws/hospitals/{world.a.slug}/scans/{scan.id}/")
        communicator.scope["user"] = world.owner
        connected, _ = await communicator.connect()
        assert connected
        await communicator.receive_json_from(timeout=5)  # the scan's state now
        await communicator.send_to(text_data="not json {")
        await communicator.send_to(bytes_data=b"\x00\xff")
        await communicator.send_json_to({"type": "anything"})
        assert await communicator.receive_nothing(timeout=0.5)
        await sync_to_async(services.start_analysis)(scan.id)
        status = (await communicator.receive_json_from(timeout=5))["status"]
        await communicator.disconnect()
        return status

    assert async_to_sync(scenario)() == "processing"
