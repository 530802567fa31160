#!/usr/bin/python3
"""A real client in a room, driven line by line, for the bridging tests.

    bridge_client.py xmpp '<json args>'   slixmpp in a MUC
    bridge_client.py irc '<json args>'    Python's irc in a channel

Args: "server" [host, port], "room", "nick"; xmpp also "jid", "password",
"ca". Reads one JSON command per stdin line:

    {"say": text, "id": optional message id}
    {"correct": id, "text": text}      XEP-0308 (xmpp only)
    {"reply": id, "text": text}        XEP-0461 (xmpp only)
    {"retract": id}                    XEP-0424 (xmpp only)
    {"raw": line}                      a raw IRC line (irc only: OPER, KILL)
    {"quit": true}

and prints one JSON line per thing seen: {"ready": true} once in the room,
{"room": nick, "body": text, "replace": id?} for what the room says (its
own echo included, with "self": true), {"private": from, "body": text} for
a private message or notice.
"""

import asyncio
import json
import ssl
import sys
import threading
import xml.etree.ElementTree as ET


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def commands(loop, handle):
    """Reads stdin on a thread and hands each command to the loop."""

    def read():
        for line in sys.stdin:
            line = line.strip()
            if line:
                loop.call_soon_threadsafe(handle, json.loads(line))
        loop.call_soon_threadsafe(handle, {"quit": True})

    threading.Thread(target=read, daemon=True).start()


def xmpp(args):
    import slixmpp

    room, nick = args["room"], args["nick"]

    class Client(slixmpp.ClientXMPP):
        def __init__(self):
            super().__init__(args["jid"], args["password"])
            self.register_plugin("xep_0045")
            self.register_plugin("xep_0308")
            self.ssl_context = ssl.create_default_context(cafile=args["ca"])
            self.add_event_handler("session_start", self.start)
            self.add_event_handler("groupchat_message", self.groupchat)
            self.add_event_handler("message", self.private)

        async def start(self, _event):
            self.send_presence()
            await self.plugin["xep_0045"].join_muc_wait(room, nick, maxstanzas=0, timeout=20)
            emit({"ready": True})

        def groupchat(self, msg):
            if msg["mucroom"] != room:
                return
            seen = {"room": msg["mucnick"], "body": msg["body"], "id": msg["id"]}
            replace = msg["replace"]["id"]
            if replace:
                seen["replace"] = replace
            if msg["mucnick"] == nick:
                seen["self"] = True
            emit(seen)

        def private(self, msg):
            if msg["type"] in ("chat", "normal") and msg["body"]:
                emit({"private": str(msg["from"]), "body": msg["body"]})

    async def run():
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        client = Client()

        def handle(cmd):
            if "say" in cmd:
                m = client.make_message(mto=room, mbody=cmd["say"], mtype="groupchat")
                if cmd.get("id"):
                    m["id"] = cmd["id"]
                m.send()
            elif "correct" in cmd:
                m = client.make_message(mto=room, mbody=cmd["text"], mtype="groupchat")
                m["replace"]["id"] = cmd["correct"]
                m.send()
            elif "reply" in cmd:
                # XEP-0461, with the quote as fallback text.
                m = client.make_message(mto=room, mbody=cmd["text"], mtype="groupchat")
                m.append(ET.fromstring(f"<reply xmlns='urn:xmpp:reply:0' id='{cmd['reply']}'/>"))
                m.send()
            elif "retract" in cmd:
                # XEP-0424, with a fallback body for clients without it.
                m = client.make_message(mto=room, mbody="retracted a message", mtype="groupchat")
                m.append(ET.fromstring(f"<retract xmlns='urn:xmpp:message-retract:1' id='{cmd['retract']}'/>"))
                m.send()
            elif cmd.get("quit") and not done.done():
                client.disconnect()
                done.set_result(None)

        commands(loop, handle)
        client.connect(address=tuple(args["server"]))
        await done
        await asyncio.sleep(0.5)

    asyncio.run(run())


def irc(args):
    import irc.client

    room, nick = args["room"], args["nick"]
    # Debian ships irc 8.5, where the reactor is still called IRC.
    reactor = (getattr(irc.client, "Reactor", None) or irc.client.IRC)()
    conn = reactor.server().connect(args["server"][0], args["server"][1], nick)

    def welcome(c, _e):
        c.join(room)

    def who(e):
        return str(e.source).split("!")[0] if e.source else ""

    def joined(_c, e):
        if who(e) == conn.get_nickname():
            emit({"ready": True})

    def pubmsg(_c, e):
        emit({"room": who(e), "body": e.arguments[0]})

    def action(_c, e):
        emit({"room": who(e), "body": "/me " + e.arguments[0]})

    def private(_c, e):
        emit({"private": who(e), "body": e.arguments[0]})

    for kind, handler in (
        ("welcome", welcome),
        ("join", joined),
        ("pubmsg", pubmsg),
        ("action", action),
        ("privmsg", private),
        ("privnotice", private),
    ):
        reactor.add_global_handler(kind, handler)

    pending = []
    lock = threading.Lock()

    def read():
        for line in sys.stdin:
            line = line.strip()
            if line:
                with lock:
                    pending.append(json.loads(line))
        with lock:
            pending.append({"quit": True})

    threading.Thread(target=read, daemon=True).start()
    while True:
        reactor.process_once(0.05)
        with lock:
            todo, pending[:] = list(pending), []
        for cmd in todo:
            if "say" in cmd:
                conn.privmsg(room, cmd["say"])
            elif "raw" in cmd:
                conn.send_raw(cmd["raw"])
            elif cmd.get("quit"):
                conn.quit("bye")
                return


def main():
    kind, args = sys.argv[1], json.loads(sys.argv[2])
    {"xmpp": xmpp, "irc": irc}[kind](args)


if __name__ == "__main__":
    main()
