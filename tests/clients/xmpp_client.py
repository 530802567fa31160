#!/usr/bin/python3
"""Real XMPP clients (slixmpp) for imgate's end-to-end tests and demo.

    xmpp_client.py SCENARIO '<json args>'

prints one JSON object with what the clients saw. Common args: "server"
([host, port] of imgate), "ca" (certificate to trust), "direct_tls",
"users" ({"alice": [jid, password], ...}).

Scenarios:
  chat  alice sends "send" (bodies) to bob; bob waits for "expect"
        messages. Returns bob's messages and alice's errors.
  muc   alice and bob join "room"; alice speaks; alice leaves.
  carbons  alice on two clients with carbons (XEP-0280): her phone writes
        to bob, bob replies to the phone; returns the laptop's copies.
  demo  alice sends "send" to bob one at a time; reports, for each, whether
        bob got it as sent, rewritten, or not at all, and alice's error.
  bulk  stream management on: alice sends "count" messages to bob, every
        "block_every"-th one containing "block_word"; both request acks at
        the end. Returns counts, duplicates and each side's SM state.
  review  alice sends "send" to bob, which policy holds; with the imgate
        CLI ("imgate", "config") the held list is read and the message
        "release" released, "reject" rejected with "note". Returns bob's
        messages, alice's errors and the CLI's output.
  console  alice sends "send" to bob (some held by policy) and both stay
        online while the browser test "browser" ([command...]) runs against
        the console; then waits for "expect_received" at bob. Returns the
        browser's JSON, bob's messages and alice's errors.
  room_content  alice and bob join "room"; alice sets each subject of
        "subjects" and reacts to bob's message with each of "reactions".
        Returns what bob saw (subjects, reactions) and alice's errors.
  spread  every user of "login" logs in through its own gateway
        ("servers": {name: [host, port]}, else "server"); then each
        [from, to_name, body] of "send" is sent in turn, "gap" seconds
        apart. Returns each user's received bodies and errors.
  stream  alice sends "count" messages to bob, one every "interval"
        seconds, whatever happens to her connection; bob (through another
        gateway) collects them until "quiet" seconds pass without one.
        Returns bob's bodies and alice's errors.
"""

import asyncio
import json
import logging
import os
import subprocess
import sys

import slixmpp


class Problems(logging.Handler):
    """Collects slixmpp's errors, e.g. SM sequence inconsistencies."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.records = []

    def emit(self, record):
        self.records.append(record.getMessage())


PROBLEMS = Problems()
logging.getLogger().addHandler(PROBLEMS)
logging.getLogger().setLevel(logging.WARNING)
if os.environ.get("XMPP_CLIENT_DEBUG"):
    logging.getLogger().addHandler(logging.StreamHandler(sys.stderr))
    logging.getLogger().setLevel(logging.DEBUG)


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password, ca, sm=False, carbons=False):
        super().__init__(jid, password)
        self.carbons = carbons
        self.carbon_copies = []
        if carbons:
            self.register_plugin("xep_0280")
            self.add_event_handler(
                "carbon_sent", lambda m: self.carbon_copies.append(["sent", m["carbon_sent"]["body"]])
            )
            self.add_event_handler(
                "carbon_received",
                lambda m: self.carbon_copies.append(["received", m["carbon_received"]["body"]]),
            )
        self.ca_certs = ca
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0045")
        self.register_plugin("xep_0199")
        self.register_plugin("xep_0444")
        self.subjects = []
        self.reactions = []
        self.add_event_handler("groupchat_subject", lambda m: self.subjects.append(m["subject"]))
        self.add_event_handler(
            "reactions", lambda m: self.reactions.append(sorted(m["reactions"]["values"]))
        )
        if sm:
            self.register_plugin("xep_0198")
            self.plugin["xep_0198"].window = 50
        self.messages = []
        self.errors = []
        self.stream_errors = []
        self.started = asyncio.Event()
        self.failed = asyncio.Event()
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("message_error", self.on_message)
        self.add_event_handler("groupchat_message", self.on_groupchat)
        self.add_event_handler("failed_auth", lambda _: self.failed.set())
        self.add_event_handler("stream_error", self.on_stream_error)

    async def on_start(self, _event):
        self.send_presence()
        if self.carbons:
            await self.plugin["xep_0280"].enable()
        self.started.set()

    def on_message(self, msg):
        if msg["type"] == "error":
            if any(e["id"] == msg["id"] and msg["id"] for e in self.errors):
                return
            self.errors.append(
                {
                    "id": msg["id"],
                    "condition": msg["error"]["condition"],
                    "text": msg["error"]["text"],
                    "xml": str(msg),
                }
            )
        elif msg["type"] in ("chat", "normal"):
            self.messages.append(
                {"id": msg["id"], "from": str(msg["from"]), "body": msg["body"]}
            )

    def on_groupchat(self, msg):
        self.messages.append(
            {"id": msg["id"], "from": str(msg["from"]), "body": msg["body"], "type": "groupchat"}
        )

    def on_stream_error(self, err):
        self.stream_errors.append(str(err["condition"]) + ": " + str(err["text"]))

    async def login(self, server, direct_tls):
        self.connect(address=tuple(server), use_ssl=direct_tls)
        done, _ = await asyncio.wait(
            [asyncio.ensure_future(self.started.wait()), asyncio.ensure_future(self.failed.wait())],
            timeout=30,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if not self.started.is_set():
            raise SystemExit(f"{self.boundjid} could not log in (auth failed: {self.failed.is_set()})")


async def until(predicate, timeout):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate() and loop.time() < end:
        await asyncio.sleep(0.05)
    return predicate()


async def clients(args, names, sm=False, carbons=False):
    out = []
    for name in names:
        jid, password = args["users"][name]
        c = Client(jid, password, args["ca"], sm=sm, carbons=carbons)
        direct = name in args.get("direct_tls_users", [])
        server = args.get("servers", {}).get(name, args.get("server"))
        await c.login(args["server_tls"] if direct else server, direct)
        out.append(c)
    return out


async def chat(args):
    alice, bob = await clients(args, ["alice", "bob"])
    bob_jid = args["users"]["bob"][0]
    for body in args["send"]:
        alice.send_message(mto=bob_jid, mbody=body, mtype="chat")
    await until(lambda: len(bob.messages) >= args["expect"], args.get("wait", 10))
    # Give blocked ones time to bounce and stragglers time to arrive.
    await asyncio.sleep(args.get("settle", 1.0))
    result = {
        "received": [m["body"] for m in bob.messages],
        "errors": alice.errors,
        "stream_errors": alice.stream_errors + bob.stream_errors,
    }
    for c in (alice, bob):
        c.disconnect()
    return result


async def muc(args):
    alice, bob = await clients(args, ["alice", "bob"])
    room = args["room"]
    await alice.plugin["xep_0045"].join_muc_wait(room, "alice", maxstanzas=0, timeout=20)
    await bob.plugin["xep_0045"].join_muc_wait(room, "bob", maxstanzas=0, timeout=20)
    alice.send_message(mto=room, mbody="hello room", mtype="groupchat")
    await until(lambda: any(m["body"] == "hello room" for m in bob.messages), 10)
    alice.plugin["xep_0045"].leave_muc(room, "alice")
    await asyncio.sleep(1.0)
    result = {"bob_received": [m["body"] for m in bob.messages]}
    for c in (alice, bob):
        c.disconnect()
    return result


async def bulk(args):
    alice, bob = await clients(args, ["alice", "bob"], sm=True)
    for c in (alice, bob):
        await until(lambda: c.plugin["xep_0198"].enabled_out, 10)
    bob_jid = args["users"]["bob"][0]
    count, every, word = args["count"], args["block_every"], args["block_word"]
    expected = []
    for i in range(count):
        blocked = every and (i + 1) % every == 0
        body = f"msg {i} {word}" if blocked else f"msg {i}"
        if not blocked:
            expected.append(body)
        alice.send_message(mto=bob_jid, mbody=body, mtype="chat")
        if i % 100 == 99:
            await asyncio.sleep(0)  # let the loop write
    await until(lambda: len(bob.messages) >= len(expected), args.get("wait", 60))
    await asyncio.sleep(1.0)
    for c in (alice, bob):
        c.plugin["xep_0198"].request_ack()
    alice_sm = alice.plugin["xep_0198"]
    await until(lambda: alice_sm.last_ack == alice_sm.seq, 10)
    bodies = [m["body"] for m in bob.messages]
    result = {
        "sent": count,
        "expected": len(expected),
        "received": len(bodies),
        "unique": len(set(bodies)),
        "missing": [b for b in expected if b not in set(bodies)][:10],
        "in_order": bodies == expected,
        "errors": len(alice.errors),
        "alice_seq": alice_sm.seq,
        "alice_last_ack": alice_sm.last_ack,
        "alice_unacked": len(alice_sm.unacked_queue),
        "bob_handled": bob.plugin["xep_0198"].handled,
        "stream_errors": alice.stream_errors + bob.stream_errors,
        "problems": PROBLEMS.records,
    }
    for c in (alice, bob):
        c.disconnect()
    await asyncio.sleep(0.5)
    return result


async def carbons(args):
    phone, laptop, bob = await clients(args, ["alice_phone", "alice_laptop", "bob"], carbons=True)
    phone.send_message(mto="bob@localhost", mbody="from my phone", mtype="chat")
    await until(lambda: bob.messages and laptop.carbon_copies, 10)
    bob.send_message(mto=str(phone.boundjid), mbody="reply to the phone", mtype="chat")
    await until(lambda: phone.messages and len(laptop.carbon_copies) >= 2, 10)
    await asyncio.sleep(0.5)
    result = {
        "bob_received": [m["body"] for m in bob.messages],
        "phone_received": [m["body"] for m in phone.messages],
        "laptop_carbons": laptop.carbon_copies,
    }
    for c in (phone, laptop, bob):
        c.disconnect()
    await asyncio.sleep(0.5)
    return result


def imgate_cli(args, *cli):
    """Runs the imgate CLI with the test's config; its stdout, or raises."""
    out = subprocess.run(
        [args["imgate"], *cli, "--config", args["config"]], capture_output=True, text=True
    )
    if out.returncode != 0:
        raise SystemExit(f"imgate {' '.join(cli)} failed ({out.returncode}): {out.stderr}")
    return out.stdout


async def review(args):
    alice, bob = await clients(args, ["alice", "bob"])
    bob_jid = args["users"]["bob"][0]
    for body in args["send"]:
        alice.send_message(mto=bob_jid, mbody=body, mtype="chat")
    held = []

    async def listed():
        nonlocal held
        text = await asyncio.to_thread(imgate_cli, args, "archive", "held", "--json")
        held = [json.loads(line) for line in text.splitlines() if line.strip()]
        return len(held) >= len(args["send"])

    loop = asyncio.get_running_loop()
    end = loop.time() + 10
    while not await listed() and loop.time() < end:
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)
    held_at_first = len(bob.messages)
    cli = []
    for h in held:
        if h["body"] == args["release"]:
            cli.append(await asyncio.to_thread(imgate_cli, args, "archive", "release", h["event_id"], "--by", "carol"))
        elif h["body"] == args["reject"]:
            cli.append(
                await asyncio.to_thread(
                    imgate_cli, args, "archive", "reject", h["event_id"], "--note", args["note"], "--by", "carol"
                )
            )
    await until(lambda: bob.messages and alice.errors, 10)
    await asyncio.sleep(0.5)
    result = {
        "held": [h["body"] for h in held],
        "received_before_ruling": held_at_first,
        "received": [m["body"] for m in bob.messages],
        "errors": alice.errors,
        "cli": cli,
    }
    for c in (alice, bob):
        c.disconnect()
    await asyncio.sleep(0.5)
    return result


async def console(args):
    alice, bob = await clients(args, ["alice", "bob"])
    bob_jid = args["users"]["bob"][0]
    for body in args["send"]:
        alice.send_message(mto=bob_jid, mbody=body, mtype="chat")
        await asyncio.sleep(0.05)

    async def held():
        text = await asyncio.to_thread(imgate_cli, args, "archive", "held", "--json")
        return len([line for line in text.splitlines() if line.strip()])

    loop = asyncio.get_running_loop()
    end = loop.time() + 15
    while await held() < args["held"] and loop.time() < end:
        await asyncio.sleep(0.1)
    browser = await asyncio.to_thread(
        subprocess.run, args["browser"], capture_output=True, text=True
    )
    if browser.returncode != 0:
        raise SystemExit(f"the browser test failed ({browser.returncode}):\n{browser.stdout}\n{browser.stderr}")
    await until(lambda: len(bob.messages) >= args["expect_received"] and alice.errors, 15)
    await asyncio.sleep(0.5)
    result = {
        "browser": json.loads(browser.stdout.strip().splitlines()[-1]),
        "browser_log": browser.stderr[-4000:],
        "received": [m["body"] for m in bob.messages],
        "errors": alice.errors,
    }
    for c in (alice, bob):
        c.disconnect()
    await asyncio.sleep(0.3)
    return result


async def room_content(args):
    alice, bob = await clients(args, ["alice", "bob"])
    room = args["room"]
    await alice.plugin["xep_0045"].join_muc_wait(room, "alice", maxstanzas=0, timeout=20)
    await bob.plugin["xep_0045"].join_muc_wait(room, "bob", maxstanzas=0, timeout=20)
    # Subjects seen on joining are the room's history, not what alice sets.
    await asyncio.sleep(0.5)
    bob.subjects.clear()
    for subject in args["subjects"]:
        alice.send_message(mto=room, mbody=None, msubject=subject, mtype="groupchat")
    bob.send_message(mto=room, mbody="react to this", mtype="groupchat")
    await until(lambda: any(m["body"] == "react to this" for m in alice.messages), 10)
    target = next(m["id"] for m in alice.messages if m["body"] == "react to this")
    for emoji in args["reactions"]:
        msg = alice.make_message(mto=room, mtype="groupchat")
        alice.plugin["xep_0444"].set_reactions(msg, target, [emoji])
        msg.send()
    await asyncio.sleep(args.get("settle", 2.0))
    result = {
        "bob_subjects": bob.subjects,
        "bob_reactions": bob.reactions,
        "errors": alice.errors,
    }
    for c in (alice, bob):
        c.disconnect()
    await asyncio.sleep(0.5)
    return result


async def demo(args):
    alice, bob = await clients(args, ["alice", "bob"])
    bob_jid = args["users"]["bob"][0]
    lines = []
    for body in args["send"]:
        got, errs = len(bob.messages), len(alice.errors)
        alice.send_message(mto=bob_jid, mbody=body, mtype="chat")
        await until(lambda: len(bob.messages) > got or len(alice.errors) > errs, 3)
        if len(alice.errors) > errs:
            outcome, detail = "blocked", alice.errors[-1]["text"]
        elif len(bob.messages) > got:
            received = bob.messages[-1]["body"]
            outcome = "delivered" if received == body else "rewritten"
            detail = received
        else:
            outcome, detail = "dropped", ""
        lines.append({"sent": body, "outcome": outcome, "detail": detail})
    for c in (alice, bob):
        c.disconnect()
    await asyncio.sleep(0.5)
    return {"conversation": lines}


async def spread(args):
    names = args["login"]
    logged = dict(zip(names, await clients(args, names)))
    for sender, to, body in args["send"]:
        logged[sender].send_message(mto=args["users"][to][0], mbody=body, mtype="chat")
        await asyncio.sleep(args.get("gap", 0.3))
    await asyncio.sleep(args.get("settle", 1.5))
    result = {
        name: {"received": [m["body"] for m in c.messages], "errors": [e["text"] for e in c.errors]}
        for name, c in logged.items()
    }
    for c in logged.values():
        c.disconnect()
    await asyncio.sleep(0.3)
    return result


async def stream(args):
    alice, bob = await clients(args, ["alice", "bob"])
    bob_jid = args["users"]["bob"][0]
    for i in range(args["count"]):
        alice.send_message(mto=bob_jid, mbody=f"stream {i}", mtype="chat")
        await asyncio.sleep(args.get("interval", 0.05))
    loop = asyncio.get_running_loop()
    last, seen = loop.time(), len(bob.messages)
    while loop.time() - last < args.get("quiet", 3):
        await asyncio.sleep(0.1)
        if len(bob.messages) != seen:
            last, seen = loop.time(), len(bob.messages)
    result = {
        "received": [m["body"] for m in bob.messages],
        "errors": [e["text"] for e in alice.errors],
    }
    for c in (alice, bob):
        c.disconnect()
    await asyncio.sleep(0.3)
    return result


def main():
    scenario, args = sys.argv[1], json.loads(sys.argv[2])
    run = {
        "chat": chat,
        "muc": muc,
        "bulk": bulk,
        "demo": demo,
        "carbons": carbons,
        "review": review,
        "room_content": room_content,
        "console": console,
        "spread": spread,
        "stream": stream,
    }[scenario]
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    result = loop.run_until_complete(asyncio.wait_for(run(args), args.get("timeout", 120)))
    if args.get("pretty") and scenario == "demo":
        for line in result["conversation"]:
            print(f"\n  alice: {line['sent']}")
            if line["outcome"] == "blocked":
                print(f"  -> BLOCKED; alice is told: {line['detail']}")
            elif line["outcome"] == "rewritten":
                print(f"  -> REWRITTEN; bob reads: {line['detail']}")
            elif line["outcome"] == "delivered":
                print("  -> delivered as sent")
            else:
                print("  -> dropped")
    else:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
