"""The run socket: a snapshot at once, then every event the ServerApp publishes; 4404 for the rest."""

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from federation import services
from federation.models import FederatedRun
from federation.routing import websocket_urlpatterns
from tests.factories import make_user

pytestmark = pytest.mark.django_db(transaction=True)


def make_run(*hospitals):
    run = FederatedRun.objects.create()
    run.hospitals.set(hospitals)
    return run


async def _connect(user, run_id):
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/federation/runs/{run_id}/")
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    return communicator, connected


def test_participating_admin_gets_a_snapshot_then_live_events(world):
    run = make_run(world.a, world.b)

    async def scenario():
        communicator, connected = await _connect(world.admin_a, run.pk)
        assert connected
        snapshot = await communicator.receive_json_from(timeout=5)
        assert snapshot["kind"] == "snapshot" and snapshot["run"]["id"] == run.pk
        await sync_to_async(services.publish)(run.pk, {"kind": "round", "run": run.pk, "round": 1,
                                                       "global_accuracy": 0.7})
        event = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return event

    assert async_to_sync(scenario)() == {"kind": "round", "run": run.pk, "round": 1, "global_accuracy": 0.7}


def test_operator_watches_any_run(world):
    operator = make_user("op@neurofed.example", is_superuser=True)
    run = make_run(world.b)

    async def scenario():
        communicator, connected = await _connect(operator, run.pk)
        message = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return connected, message["kind"]

    assert async_to_sync(scenario)() == (True, "snapshot")


@pytest.mark.parametrize("who", ["outsider", "doctor_a", "admin_b", "anonymous", "missing"])
def test_others_are_closed_with_4404(world, who):
    run = make_run(world.a)
    user = AnonymousUser() if who == "anonymous" else getattr(world, "admin_a" if who == "missing" else who)
    run_id = 987654 if who == "missing" else run.pk

    async def scenario():
        communicator, connected = await _connect(user, run_id)
        return connected, await communicator.receive_output(timeout=5)

    assert async_to_sync(scenario)() == (True, {"type": "websocket.close", "code": 4404})
