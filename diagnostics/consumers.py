"""Live scan states over websockets (Channels), session-authenticated and tenant-checked.

A socket a user may not open is accepted and closed at once with code 4404, whether the hospital or
scan does not exist or is not theirs (the same answer as the HTTP 404), or 4403 when their role does
not allow it (a patient on the doctors' worklist). Closing before accepting would make the server
answer the handshake with a bare HTTP 403, which a client cannot tell from a CSRF/origin refusal.

A socket lives for hours, and a member can be removed, demoted or deactivated meanwhile: every event is
relayed only after the access is checked again (one indexed query; events come a few per scan), and a
socket whose access no longer holds is closed with the same codes. The sign-in it was opened under is
checked again too: once it has ended (signed out in another tab, expired, or the password changed) the
socket is closed with 4401, and so is one opened without a sign-in, so that a page can say "sign in
again" rather than "removed".
"""


from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.core.exceptions import PermissionDenied
from django.http import Http404

from diagnostics.access import access_scan, visible_scans
from diagnostics.models.scans import Scan
from diagnostics.notify import scan_event, scan_group, worklist_group
from hospitals.access import STAFF_ROLES, access_membership
from hospitals.accounts import socket_sign_in_ended, stored_user

CLOSE_NOT_FOUND = 4404
CLOSE_FORBIDDEN = 4403
CLOSE_SIGNED_OUT = 4401


class _ScanEventsConsumer(AsyncJsonWebsocketConsumer):
    group = None

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.accept()
            await self.close(code=CLOSE_SIGNED_OUT)
            return
        try:
            self.group = await database_sync_to_async(self.authorise)()
        except Http404:
            await self.accept()
            await self.close(code=CLOSE_NOT_FOUND)
            return
        except PermissionDenied:
            await self.accept()
            await self.close(code=CLOSE_FORBIDDEN)
            return
        # Joined before the state is read: a change in between is then relayed after that state, never lost.
        await self.channel_layer.group_add(self.group, self.channel_name)
        first_message = await database_sync_to_async(self.state_now)()
        await self.accept()
        if first_message is not None:
            await self.send_json(first_message)

    async def disconnect(self, code):
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        """Clients only listen; anything they send is ignored."""

    async def scan_event(self, message):
        close_code = await database_sync_to_async(self._refusal)()
        if close_code is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            self.group = None
            await self.close(code=close_code)
            return
        await self.send_json({key: value for key, value in message.items() if key != "type"})

    def _refusal(self):
        """None while the user may still watch, else the close code."""
        if socket_sign_in_ended(self.scope):
            return CLOSE_SIGNED_OUT
        user = stored_user(self.scope.get("user"))
        try:
            self.recheck(user)
        except Http404:
            return CLOSE_NOT_FOUND
        except PermissionDenied:
            return CLOSE_FORBIDDEN
        return None

    def authorise(self):
        """The group to join, once the user may open the socket (Http404 or PermissionDenied otherwise)."""
        raise NotImplementedError

    def state_now(self):
        """The first message: what the socket is about, as it stands (None to send nothing)."""
        return None

    def recheck(self, user):
        """Raise as authorise() would, without its side effects (the audit of opening the socket)."""
        raise NotImplementedError


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
