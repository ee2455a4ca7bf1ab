"""Live progress of a federated run: /ws/federation/runs/<id>/.

The run's state (with the rounds so far) at once, then every event as the ServerApp records it. The
close codes and the access checked again for every event (a run sends a few per round) are
hospitals.sockets': an admin removed from their hospital, or a deactivated account, has the socket closed.

Events are published once per run, to everyone watching it; each socket passes them through
federation.access.event_view for its own user, so a hospital admin reads their own node's figures and
not the other hospitals'.
"""

from federation.access import access_run, event_view, own_sites
from federation.services import run_group
from hospitals.sockets import MemberSocketConsumer


class FederatedRunConsumer(MemberSocketConsumer):
    def authorise(self):
        self.run_id = access_run(self.scope.get("user"), self.scope["url_route"]["kwargs"]["run_id"]).pk
        return run_group(self.run_id)

    def state_now(self):
        from federation.api.serializers import RunSerializer
        from federation.models import FederatedRun

        run = FederatedRun.objects.get(pk=self.run_id)
        return {"kind": "snapshot", "run": RunSerializer(run, context={"viewer": self.scope.get("user")}).data}

    def recheck(self, user):
        """What the user may read of the run now (see own_sites)."""
        access_run(user, self.scope["url_route"]["kwargs"]["run_id"])
        return own_sites(user)

    def view(self, message, own):
        return event_view(message["event"], own)

    async def run_event(self, message):
        await self.relay(message)
