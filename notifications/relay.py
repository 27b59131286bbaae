"""Group messages to the sockets of this process: one channel-layer subscription per group, not one per socket.

Channels gives every socket its own channel and puts a group message into each member's queue: a
reading watched by a thousand pages became a thousand queue hand-offs, decodes, consumer task
wake-ups and dispatches in the ws process. Here a group is joined once per process (and event
loop) through a channel of its own, and one task writes each of its messages to every socket of
this process in the group, in the order the messages arrive. Under daphne the WebSocket frame is
built once per message and its bytes written to each socket (autobahn's prepared messages).
"""

import asyncio
import functools
import json
import logging
import weakref
from dataclasses import dataclass, field
from typing import Protocol

from autobahn.websocket.protocol import PreparedMessage, WebSocketProtocol

from .live import HANDLER

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0


class Socket(Protocol):
    daphne_protocol: WebSocketProtocol | None  # set when daphne serves the socket

    async def send(self, text_data: str | None = None) -> None: ...


@dataclass(eq=False)
class Membership:
    """A group's sockets in this process and the channel that receives for them."""

    sockets: dict[Socket, None] = field(default_factory=dict)  # insertion-ordered set
    channel: str = ""
    opened: asyncio.Future | None = None
    reader: asyncio.Task | None = None


class Relay:
    def __init__(self, layer):
        self.layer = layer
        self.groups: dict[str, Membership] = {}
        self.closing: set[asyncio.Task] = set()

    async def join(self, group: str, socket: Socket) -> None:
        """Messages to ``group`` reach ``socket`` from when this returns."""
        membership = self.groups.get(group)
        if membership is None:
            membership = self.groups[group] = Membership()
            membership.opened = asyncio.ensure_future(self._open(group, membership))
        membership.sockets[socket] = None
        try:
            await asyncio.shield(membership.opened)
        except BaseException:
            self.leave(group, socket)
            raise

    def leave(self, group: str, socket: Socket) -> None:
        """No more messages of ``group`` to ``socket``; the last socket to leave closes the group's channel."""
        membership = self.groups.get(group)
        if membership is None or socket not in membership.sockets:
            return
        del membership.sockets[socket]
        if not membership.sockets:
            del self.groups[group]
            task = asyncio.ensure_future(self._close(group, membership))
            self.closing.add(task)
            task.add_done_callback(self.closing.discard)

    async def _open(self, group: str, membership: Membership) -> None:
        try:
            membership.channel = await self.layer.new_channel()
            await self.layer.group_add(group, membership.channel)
        except BaseException:
            if self.groups.get(group) is membership:
                del self.groups[group]  # the next join tries again
            raise
        membership.reader = asyncio.ensure_future(self._read(membership))

    async def _close(self, group: str, membership: Membership) -> None:
        try:
            await membership.opened
        except Exception:
            return  # never opened: nothing to close
        membership.reader.cancel()
        try:
            await self.layer.group_discard(group, membership.channel)
        except Exception as exc:
            log.warning("Leaving %s failed: %r", group, exc)

    async def _read(self, membership: Membership) -> None:
        while True:
            try:
                event = await self.layer.receive(membership.channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the layer lost its server: keep listening, it reconnects
                log.warning("Receiving live messages failed: %r", exc)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            if event.get("type") != HANDLER:
                continue
            text = event.get("text") or json.dumps(event["message"])
            await write(list(membership.sockets), text)


async def write(sockets: list[Socket], text: str) -> None:
    """``text`` to each socket: daphne's get one frame framed once, others go through their consumer."""
    frame = None
    for socket in sockets:
        protocol = socket.daphne_protocol
        try:
            if protocol is None:
                await socket.send(text_data=text)
            elif protocol.state == WebSocketProtocol.STATE_OPEN:
                if frame is None:
                    frame = PreparedMessage(text.encode(), isBinary=False, applyMask=False, doNotCompress=False)
                protocol.sendPreparedMessage(frame)
        except Exception as exc:  # a socket going away must not cost the others their message
            log.debug("Live message to a socket failed: %r", exc)


_relays: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Relay]" = weakref.WeakKeyDictionary()


def relay(layer) -> Relay:
    """The relay of ``layer`` on the running event loop (daphne has one; tests start one per scenario)."""
    loop = asyncio.get_running_loop()
    current = _relays.get(loop)
    if current is None or current.layer is not layer:
        current = _relays[loop] = Relay(layer)
    return current


def daphne_protocol(send) -> WebSocketProtocol | None:
    """daphne's connection behind the ASGI ``send`` a consumer gets, or None under any other server.

    daphne gives each application ``partial(server.handle_reply, protocol)``; Channels' session
    middleware (in ``AuthMiddlewareStack``) wraps it as ``real_send``.
    """
    inner = getattr(getattr(send, "__self__", None), "real_send", send)
    protocol = inner.args[0] if isinstance(inner, functools.partial) and inner.args else None
    return protocol if isinstance(protocol, WebSocketProtocol) else None
