"""Live progress of a federated run: /ws/federation/runs/<id>/.

The run's state (with the rounds so far) at once, then every event as the ServerApp records it. Same
close codes as the scan sockets: 4404 for a run that does not exist or is not the user's to watch.
"""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.http import Http404

from federation.access import access_run
from federation.services import run_group

CLOSE_NOT_FOUND = 4404


class FederatedRunConsumer(AsyncJsonWebsocketConsumer):
    group = None

    async def connect(self):
        try:
            self.group, snapshot = await database_sync_to_async(self._authorise)()
        except Http404:
            await self.accept()
            await self.close(code=CLOSE_NOT_FOUND)
            return
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json({"kind": "snapshot", "run": snapshot})

    def _authorise(self):
        from federation.api.serializers import RunSerializer

        run = access_run(self.scope.get("user"), self.scope["url_route"]["kwargs"]["run_id"])
        return run_group(run.pk), RunSerializer(run).data

    async def disconnect(self, code):
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        """Watchers only listen."""

    async def run_event(self, message):
        await self.send_json(message["event"])
