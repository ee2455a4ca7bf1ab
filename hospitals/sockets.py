"""The one shape of every live socket (scans, worklist, federated runs): a member's view of a hospital's data.

A socket a user may not open is accepted and closed at once with a code a page can act on: 4404 when
what it asks for does not exist or is not theirs (the same answer as the HTTP 404), 4403 when their role
does not allow it, 4401 without a sign-in. Closing before accepting would make the server answer the
handshake with a bare HTTP 403, which a client cannot tell from a CSRF/origin refusal.

A socket lives for hours, and a member can be removed, demoted or deactivated meanwhile: every event is
relayed only after the access is checked again, with the account as stored now. The sign-in the socket
was opened under is checked again too: once it has ended (signed out in another tab, expired, or the
password changed) the socket is closed with 4401, so that a page can say "sign in again" rather than
"removed".
"""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.core.exceptions import PermissionDenied
from django.http import Http404

from hospitals.accounts import socket_sign_in_ended, stored_user

CLOSE_NOT_FOUND = 4404
CLOSE_FORBIDDEN = 4403
CLOSE_SIGNED_OUT = 4401


class _Refused(Exception):
    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


def _close_code(refusal: Exception) -> int:
    return CLOSE_NOT_FOUND if isinstance(refusal, Http404) else CLOSE_FORBIDDEN


class MemberSocketConsumer(AsyncJsonWebsocketConsumer):
    """Subclasses say what the socket is about (authorise, state_now), how access is checked again for each
    event (recheck) and what the user may read of one (view); they relay their channel-layer message type
    through `relay`."""

    group = None

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self._refuse(CLOSE_SIGNED_OUT)
            return
        try:
            self.group = await database_sync_to_async(self.authorise)()
        except (Http404, PermissionDenied) as refusal:
            await self._refuse(_close_code(refusal))
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

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        """Clients only listen; anything they send is ignored, unparsed. Parsed as JSON (the base class's
        receive), a frame that is not JSON, or a binary one, raised in the consumer and ended it without
        its disconnect, which leaves its channel in the group."""

    async def relay(self, message):
        """Send the user's view of a channel-layer event, or close the socket if they may no longer watch."""
        if self.group is None:
            # Closed by an earlier event: events come in bursts, and those already in this channel still
            # arrive until the client's disconnect does. They are not this user's to read any more.
            return
        try:
            allowed = await database_sync_to_async(self._access_now)()
        except _Refused as refused:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            self.group = None
            await self.close(code=refused.code)
            return
        outgoing = self.view(message, allowed)
        if outgoing is not None:
            await self.send_json(outgoing)

    def _access_now(self):
        if socket_sign_in_ended(self.scope):
            raise _Refused(CLOSE_SIGNED_OUT)
        try:
            return self.recheck(stored_user(self.scope.get("user")))
        except (Http404, PermissionDenied) as refusal:
            raise _Refused(_close_code(refusal)) from None

    async def _refuse(self, code: int):
        await self.accept()
        await self.close(code=code)

    def authorise(self):
        """The group to join, once the user may open the socket (Http404 or PermissionDenied otherwise)."""
        raise NotImplementedError

    def state_now(self):
        """The first message: what the socket is about, as it stands (None to send nothing)."""
        return None

    def recheck(self, user):
        """Raise as authorise() would, without its side effects (the audit of opening the socket), for the
        account as stored now (None once deactivated); what it returns is handed to view()."""
        raise NotImplementedError

    def view(self, message, allowed):
        """What this user is sent of an event (None for nothing): by default the event as published."""
        return {key: value for key, value in message.items() if key != "type"}
