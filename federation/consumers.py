"""Live progress of a federated run: /ws/federation/runs/<id>/.

The run's state (with the rounds so far) at once, then every event as the ServerApp records it. Same
close codes as the scan sockets: 4404 for a run that does not exist or is not the user's to watch, 4401
for a socket without a sign-in or whose sign-in has ended since.

Events are published once per run, to everyone watching it; each socket passes them through
federation.access.event_view for its own user, so a hospital admin reads their own node's figures and
not the other hospitals'. Access is checked again for every event (a run sends a few per round): an
admin removed from their hospital, or a deactivated account, has the socket closed.
"""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.http import Http404

from federation.access import access_run, event_view, own_sites
from federation.services import run_group
from hospitals.accounts import socket_sign_in_ended, stored_user

CLOSE_NOT_FOUND = 4404
CLOSE_SIGNED_OUT = 4401


class SignInEnded(Exception):
    pass


class FederatedRunConsumer(AsyncJsonWebsocketConsumer):
    group = None

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.accept()
            await self.close(code=CLOSE_SIGNED_OUT)
            return
        try:
            run_id = await database_sync_to_async(self._authorise)()
        except Http404:
            await self.accept()
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.group = run_group(run_id)
        # Joined before the snapshot is read: an event in between is relayed after it, never lost.
        await self.channel_layer.group_add(self.group, self.channel_name)
        snapshot = await database_sync_to_async(self._snapshot)(run_id)
        await self.accept()
        await self.send_json({"kind": "snapshot", "run": snapshot})

    def _authorise(self):
        return access_run(self.scope.get("user"), self.scope["url_route"]["kwargs"]["run_id"]).pk

    def _snapshot(self, run_id):
        from federation.api.serializers import RunSerializer
        from federation.models import FederatedRun

        run = FederatedRun.objects.get(pk=run_id)
        return RunSerializer(run, context={"viewer": self.scope.get("user")}).data

    def _current_sites(self):
        """What the user may read of the run now (see own_sites); Http404 once they may not watch it, and
        SignInEnded once the socket's sign-in has."""
        if socket_sign_in_ended(self.scope):
            raise SignInEnded
        user = stored_user(self.scope.get("user"))
        access_run(user, self.scope["url_route"]["kwargs"]["run_id"])
        return own_sites(user)

    async def _stop(self, code):
        await self.channel_layer.group_discard(self.group, self.channel_name)
        self.group = None
        await self.close(code=code)

    async def disconnect(self, code):
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        """Watchers only listen."""

    async def run_event(self, message):
        try:
            own = await database_sync_to_async(self._current_sites)()
        except Http404:
            await self._stop(CLOSE_NOT_FOUND)
            return
        except SignInEnded:
            await self._stop(CLOSE_SIGNED_OUT)
            return
        event = event_view(message["event"], own)
        if event is not None:
            await self.send_json(event)
