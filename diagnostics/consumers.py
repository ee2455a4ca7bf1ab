"""Live scan states over websockets (Channels), session-authenticated and tenant-checked.

The close codes and the access checked again for every event are hospitals.sockets'. Events come a few
per scan, and each recheck is one indexed query.
"""

from django.http import Http404

from diagnostics.access import access_scan, visible_scans
from diagnostics.models.scans import Scan
from diagnostics.notify import scan_event, scan_group, worklist_group
from hospitals.access import STAFF_ROLES, access_membership
from hospitals.sockets import MemberSocketConsumer


class _ScanEventsConsumer(MemberSocketConsumer):
    async def scan_event(self, message):
        await self.relay(message)


class ScanConsumer(_ScanEventsConsumer):
    """/ws/hospitals/<slug>/scans/<id>/: the scan's current state at once, then every change."""

    def authorise(self):
        kwargs = self.scope["url_route"]["kwargs"]
        user = self.scope.get("user")
        membership = access_membership(user, kwargs["slug"])
        scan = access_scan(user, membership.hospital, kwargs["scan_id"], membership, action="scan.watch")
        self.scan_id = scan.id
        return scan_group(scan.id)

    def state_now(self):
        # The state now, so a client that connects after a change has not missed it.
        scan = Scan.objects.filter(pk=self.scan_id).first()
        if scan is None:  # removed meanwhile: its deletion event follows
            return None
        return {key: value for key, value in scan_event(scan, "scan.status").items() if key != "type"}

    def recheck(self, user):
        kwargs = self.scope["url_route"]["kwargs"]
        membership = access_membership(user, kwargs["slug"])
        if not visible_scans(user, membership.hospital, membership).filter(pk=kwargs["scan_id"]).exists():
            raise Http404("No such scan")


class WorklistConsumer(_ScanEventsConsumer):
    """/ws/hospitals/<slug>/worklist/: new, finished and reviewed scans of the hospital, for its staff."""

    def authorise(self):
        user = self.scope.get("user")
        membership = access_membership(user, self.scope["url_route"]["kwargs"]["slug"], roles=STAFF_ROLES)
        return worklist_group(membership.hospital_id)

    def recheck(self, user):
        access_membership(user, self.scope["url_route"]["kwargs"]["slug"], roles=STAFF_ROLES)
