#!/usr/bin/python3
"""Real IRC clients (Python's `irc` library) for imgate's tests and demo.

    irc_client.py SCENARIO '<json args>'

prints one JSON object with what the clients saw. Args: "server" ([host,
port] of imgate), "tls" (connect with TLS, trusting "ca"), "channel".

Scenarios:
  chat  alice and bob join "channel"; alice sends "send": a list of
        [kind, target, text] where kind is "msg", "action", "dcc", "topic"
        (text is the new topic) or "tagmsg" (text is the line's tags, e.g.
        "+draft/react=👍") and target "channel" or "bob"; bob waits for
        "expect" messages. Returns what bob got (messages, topics) and the
        NOTICEs alice got from the gateway. "members": more nicks that
        join the channel and only listen; what each got is in "members".
  demo  the same, printed for people.
"""

import functools
import json
import ssl
import sys
import time

import irc.client
import irc.connection


def connect(reactor, args, nick):
    server = args["server"]
    factory = irc.connection.Factory()
    if args.get("tls"):
        ctx = ssl.create_default_context(cafile=args["ca"])
        factory = irc.connection.Factory(
            wrapper=functools.partial(ctx.wrap_socket, server_hostname="localhost")
        )
    c = reactor.server().connect(server[0], server[1], nick, connect_factory=factory)
    c.seen = {"messages": [], "notices": [], "ctcp": [], "topics": [], "joined": False, "welcome": False}
    return c


def watch(reactor):
    """Records what each connection receives in its `seen`."""

    def on(kind):
        def handler(conn, event):
            text = event.arguments[0] if event.arguments else ""
            nick = str(event.source).split("!")[0]
            if kind in ("pubmsg", "privmsg"):
                conn.seen["messages"].append({"to": event.target, "from": nick, "text": text})
            elif kind == "action":
                conn.seen["messages"].append({"to": event.target, "from": nick, "text": "/me " + text})
            elif kind in ("privnotice", "pubnotice"):
                conn.seen["notices"].append({"from": str(event.source), "text": text})
            elif kind == "ctcp":
                conn.seen["ctcp"].append(" ".join(event.arguments))
            elif kind == "topic":
                conn.seen["topics"].append({"from": nick, "text": text})
            elif kind == "join" and nick == conn.get_nickname():
                conn.seen["joined"] = True
            elif kind == "welcome":
                conn.seen["welcome"] = True
        return handler

    for kind in ("pubmsg", "privmsg", "action", "privnotice", "pubnotice", "ctcp", "topic", "join", "welcome"):
        reactor.add_global_handler(kind, on(kind))


def pump(reactor, until, timeout):
    end = time.time() + timeout
    while time.time() < end and not until():
        reactor.process_once(0.05)
    return until()


def chat(args):
    # Debian ships irc 8.5, where the reactor is still called IRC.
    reactor = getattr(irc.client, "Reactor", None) or irc.client.IRC
    reactor = reactor()
    watch(reactor)
    alice = connect(reactor, args, "alice")
    bob = connect(reactor, args, "bob")
    members = {nick: connect(reactor, args, nick) for nick in args.get("members", [])}
    everyone = [alice, bob, *members.values()]
    if not pump(reactor, lambda: all(c.seen["welcome"] for c in everyone), 15):
        raise SystemExit("registration did not complete")
    channel = args.get("channel", "#lobby")
    for c in everyone:
        c.join(channel)
    if not pump(reactor, lambda: all(c.seen["joined"] for c in everyone), 10):
        raise SystemExit("joining the channel did not complete")
    if args.get("rename"):
        alice.nick(args["rename"])
        pump(reactor, lambda: alice.get_nickname() == args["rename"], 5)
    for kind, target, text in args["send"]:
        to = channel if target == "channel" else target
        if kind == "action":
            alice.action(to, text)
        elif kind == "dcc":
            alice.ctcp("DCC", to, text)
        elif kind == "topic":
            alice.topic(to, text)
        elif kind == "tagmsg":
            alice.send_raw(f"@{text} TAGMSG {to}")
        else:
            alice.privmsg(to, text)
        reactor.process_once(0.01)
    pump(reactor, lambda: len(bob.seen["messages"]) >= args.get("expect", 0), args.get("wait", 10))
    pump(reactor, lambda: False, args.get("settle", 1.0))
    result = {
        "bob_messages": bob.seen["messages"],
        "bob_topics": bob.seen["topics"],
        "bob_ctcp": bob.seen["ctcp"],
        "alice_notices": [n for n in alice.seen["notices"] if not n["from"].startswith("irc.")],
        "members": {nick: c.seen["messages"] for nick, c in members.items()},
    }
    for c in everyone:
        c.quit("bye")
    pump(reactor, lambda: False, 0.3)
    return result


def main():
    scenario, args = sys.argv[1], json.loads(sys.argv[2])
    if scenario == "chat":
        print(json.dumps(chat(args)))
    elif scenario == "demo":
        result = chat(args)
        received = [m["text"] for m in result["bob_messages"]]
        notices = [n["text"] for n in result["alice_notices"]]
        for kind, target, text in args["send"]:
            shown = ("/me " + text) if kind == "action" else text
            print(f"\n  <alice> {shown}")
            got = [r for r in received if r.startswith(shown)]
            if got and got[0] == shown:
                print("  -> delivered as sent")
            elif got:
                print(f"  -> REWRITTEN; bob reads: {got[0]}")
            else:
                print(f"  -> BLOCKED; imgate tells alice: {notices.pop(0) if notices else '(nothing)'}")
    else:
        raise SystemExit(f"unknown scenario {scenario}")


if __name__ == "__main__":
    main()
