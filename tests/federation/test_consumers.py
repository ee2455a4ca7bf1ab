"""The run socket: a snapshot at once, then every event the ServerApp publishes, each as its watcher may
read it; 4404 for the rest, and for a watcher who lost their access since."""

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from federation import services
from federation.models import FederatedRun
from federation.routing import websocket_urlpatterns
from hospitals.models import Role
from tests.factories import make_member, make_user

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
def test_others_are_closed_with_4404_and_no_sign_in_with_4401(world, who):
    run = make_run(world.a)
    user = AnonymousUser() if who == "anonymous" else getattr(world, "admin_a" if who == "missing" else who)
    run_id = 987654 if who == "missing" else run.pk

    async def scenario():
        communicator, connected = await _connect(user, run_id)
        return connected, await communicator.receive_output(timeout=5)

    # Without a sign-in, every run answers alike: sign in first (nothing said of whether the run exists).
    code = 4401 if who == "anonymous" else 4404
    assert async_to_sync(scenario)() == (True, {"type": "websocket.close", "code": code})


ROUND_EVENT = {"kind": "round", "round": 1, "global_accuracy": 0.61,
               "nodes": [{"hospital": "north-general", "num_examples": 412, "eval_accuracy": 0.64},
                         {"hospital": "st-anne", "num_examples": 120, "eval_accuracy": 0.6}],
               "dropouts": []}
B_DROPOUT = {"kind": "dropout", "round": 2, "phase": "train", "hospital": "north-general", "node_id": "77",
             "reason": "node error: out of memory in /srv/north-general"}


def _watch(user, run, events):
    """What the user's socket receives: the snapshot, then each published event it is sent."""

    async def scenario():
        communicator, connected = await _connect(user, run.pk)
        assert connected
        received = [await communicator.receive_json_from(timeout=5)]
        for event in events:
            await sync_to_async(services.publish)(run.pk, {**event, "run": run.pk})
            received.append(await communicator.receive_json_from(timeout=5))
        await communicator.disconnect()
        return received

    return async_to_sync(scenario)()


def test_an_admin_watches_their_own_hospitals_node_and_the_others_as_a_count(world):
    run = make_run(world.a, world.b)
    run.dropouts = [{k: v for k, v in B_DROPOUT.items() if k != "kind"}]
    run.save()
    snapshot, round_event, dropout = _watch(world.admin_a, run, [ROUND_EVENT, B_DROPOUT])
    assert snapshot["run"]["dropouts"] == [{"round": 2, "phase": "train", "other_hospital": True}]
    assert round_event["nodes"] == [{"hospital": "st-anne", "num_examples": 120, "eval_accuracy": 0.6}]
    assert round_event["other_hospitals"] == 1 and round_event["global_accuracy"] == 0.61
    assert dropout == {"kind": "dropout", "run": run.pk, "round": 2, "phase": "train", "other_hospital": True}


def test_the_operator_watches_every_sites_figures(world):
    operator = make_user("op@neurofed.example", is_superuser=True)
    run = make_run(world.a, world.b)
    _, round_event, dropout = _watch(operator, run, [ROUND_EVENT, B_DROPOUT])
    assert round_event == {**ROUND_EVENT, "run": run.pk}
    assert dropout == {**B_DROPOUT, "run": run.pk}


def test_an_admin_removed_from_their_hospital_has_the_socket_closed_at_the_next_event(world):
    from hospitals.models import Membership
    from hospitals.services import remove_member

    run = make_run(world.a, world.b)
    second_admin = make_member(world.a, Role.ADMIN, "admin2@st-anne.example")

    async def scenario():
        communicator, connected = await _connect(second_admin, run.pk)
        assert connected
        await communicator.receive_json_from(timeout=5)
        await sync_to_async(remove_member)(hospital=world.a, actor=world.admin_a,
                                           membership=await Membership.objects.aget(user=second_admin))
        await sync_to_async(services.publish)(run.pk, {**ROUND_EVENT, "run": run.pk})
        return await communicator.receive_output(timeout=5)

    assert async_to_sync(scenario)() == {"type": "websocket.close", "code": 4404}


def test_an_admin_watches_their_own_hospitals_dropout_whole(world):
    run = make_run(world.a, world.b)
    a_dropout = {**B_DROPOUT, "hospital": "st-anne", "node_id": "12", "reason": "node error: out of memory"}
    _, dropout = _watch(world.admin_a, run, [a_dropout])
    assert dropout == {**a_dropout, "run": run.pk}


def test_a_watcher_whose_sign_in_ended_has_the_socket_closed_as_signed_out(world):
    from importlib import import_module

    from django.conf import settings
    from django.test import Client

    run = make_run(world.a, world.b)
    client = Client()
    client.force_login(world.admin_a)
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key=client.session.session_key)

    async def scenario():
        communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/federation/runs/{run.pk}/")
        communicator.scope["user"], communicator.scope["session"] = world.admin_a, session
        connected, _ = await communicator.connect()
        assert connected
        await communicator.receive_json_from(timeout=5)
        await sync_to_async(services.publish)(run.pk, {**ROUND_EVENT, "run": run.pk})
        assert (await communicator.receive_json_from(timeout=5))["kind"] == "round"
        await sync_to_async(client.logout)()  # in another tab
        await sync_to_async(services.publish)(run.pk, {**ROUND_EVENT, "run": run.pk})
        return await communicator.receive_output(timeout=5)

    assert async_to_sync(scenario)() == {"type": "websocket.close", "code": 4401}
