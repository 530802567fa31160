#!/usr/bin/env python3
"""Real Matrix clients (matrix-nio) for imgate's end-to-end tests, the
demo and the bench. Runs with the Synapse venv's Python (target/matrix).

    matrix_client.py SCENARIO '<json args>'

prints one JSON object. Common args: "server" (imgate's or Synapse's base
URL), "ca" (a certificate to trust for https), "users" ({"alice":
["alice", "a-pw"], ...}).

Scenarios:
  register  registers "users" ([[name, password], ...]) on "server" with
        the shared "secret" (Synapse's admin API).
  room  alice creates a room and invites bob, who joins; alice sends each
        of "send" ([{"type": ..., "content": ...}], where a string "$N" in
        a content is the event id of send N), then uploads each of
        "uploads" ([{"name", "type", "size"}]). bob syncs until "expect"
        events of his timeline are alice's messages, reactions or
        redactions. With "outsider" (texts), carol, who talks to "direct"
        (the homeserver itself, around imgate), joins and says them.
        Returns alice's answers, bob's timeline and history and alice's
        timeline as their clients saw them, and what the homeserver stored.
  bench  alice sends "latency" messages one at a time (each send's time,
        and until bob's sync shows it), then "burst" messages from
        "concurrency" senders at once (messages per second). Returns the
        figures in milliseconds and messages per second.
  raw  alice sends each of "requests" ([{"method", "path", "body" (text),
        "headers"}]) with her token; returns each status and JSON answer,
        and the token.
"""

import asyncio
import hashlib
import hmac
import json
import ssl
import sys
import urllib.request

from nio import AsyncClient, RoomCreateError, UploadResponse


def register(args):
    base = args["server"]
    for name, password in args["users"]:
        with urllib.request.urlopen(f"{base}/_synapse/admin/v1/register") as r:
            nonce = json.load(r)["nonce"]
        mac = hmac.new(args["secret"].encode(), digestmod=hashlib.sha1)
        mac.update(b"\x00".join([nonce.encode(), name.encode(), password.encode(), b"notadmin"]))
        body = json.dumps(
            {"nonce": nonce, "username": name, "password": password, "admin": False, "mac": mac.hexdigest()}
        ).encode()
        req = urllib.request.Request(
            f"{base}/_synapse/admin/v1/register", data=body, headers={"Content-Type": "application/json"}
        )
        urllib.request.urlopen(req).read()
    return {"registered": [u for u, _ in args["users"]]}


def context(args):
    if not args.get("ca"):
        return None
    return ssl.create_default_context(cafile=args["ca"])


async def login(args, name, server=None):
    user, password = args["users"][name]
    client = AsyncClient(server or args["server"], user, ssl=context(args) if server is None else None)
    response = await client.login(password)
    if not hasattr(response, "access_token"):
        raise SystemExit(f"{name} could not log in: {response}")
    return client


def substitute(value, ids):
    if isinstance(value, str) and value.startswith("$") and value[1:].isdigit():
        return ids[int(value[1:])]
    if isinstance(value, dict):
        return {k: substitute(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, ids) for v in value]
    return value


def answer(response):
    if hasattr(response, "event_id"):
        return {"event_id": response.event_id}
    return {"errcode": getattr(response, "status_code", None), "error": getattr(response, "message", str(response))}


def of_interest(event, senders):
    return event.get("sender") in senders and event.get("type") in (
        "m.room.message",
        "m.reaction",
        "m.room.redaction",
        "m.room.encrypted",
        "m.room.topic",
    )


async def room(args):
    alice = await login(args, "alice")
    bob = await login(args, "bob")
    created = await alice.room_create(invite=[bob.user_id], name="imgate test")
    if isinstance(created, RoomCreateError):
        raise SystemExit(f"room_create: {created}")
    room_id = created.room_id
    joined = await bob.join(room_id)
    if not hasattr(joined, "room_id"):
        raise SystemExit(f"bob could not join: {joined}")
    carol = None
    if args.get("outsider"):
        # carol talks to the homeserver directly, around imgate.
        carol = await login(args, "carol", server=args["direct"])
        await alice.room_invite(room_id, carol.user_id)
        joined = await carol.join(room_id)
        if not hasattr(joined, "room_id"):
            raise SystemExit(f"carol could not join: {joined}")
    senders = [alice.user_id] + ([carol.user_id] if carol else [])
    first = await bob.sync(timeout=0)
    alice_first = await alice.sync(timeout=0)
    ids, answers = [], []
    for item in args.get("send", []):
        content = substitute(item["content"], ids)
        if item["type"] == "m.room.redaction":
            r = await alice.room_redact(room_id, content["redacts"], reason=content.get("reason"), tx_id=item.get("txn"))
        elif item["type"] == "state":
            r = await alice.room_put_state(room_id, item["state_type"], content)
        else:
            r = await alice.room_send(room_id, item["type"], content, tx_id=item.get("txn"), ignore_unverified_devices=True)
        a = answer(r)
        answers.append(a)
        ids.append(a.get("event_id"))
    uploads = []
    for up in args.get("uploads", []):
        data = b"x" * up["size"]
        r, _ = await alice.upload(lambda *_: data, content_type=up["type"], filename=up["name"], filesize=len(data))
        uploads.append({"content_uri": r.content_uri} if isinstance(r, UploadResponse) else {"error": getattr(r, "message", str(r)), "status": getattr(r, "status_code", None)})
    for body in args.get("outsider", []):
        await carol.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": body})
    timeline = []
    since = first.next_batch
    loop = asyncio.get_running_loop()
    end = loop.time() + args.get("wait", 15)
    while loop.time() < end:
        r = await bob.sync(timeout=500, since=since)
        since = getattr(r, "next_batch", since)
        for rid, joined_room in getattr(r, "rooms", None).join.items() if hasattr(r, "rooms") else []:
            if rid == room_id:
                timeline.extend(e.source for e in joined_room.timeline.events)
        if sum(1 for e in timeline if of_interest(e, senders)) >= args.get("expect", 0):
            break
    await asyncio.sleep(args.get("settle", 0.3))
    r = await bob.sync(timeout=0, since=since)
    for rid, joined_room in r.rooms.join.items() if hasattr(r, "rooms") else []:
        if rid == room_id:
            timeline.extend(e.source for e in joined_room.timeline.events)
    history = await bob.room_messages(room_id, start=since, limit=100)
    # alice's client sees the same events (judged once for both).
    seen_by_alice = await alice.sync(timeout=0, since=alice_first.next_batch)
    alice_timeline = [
        e.source
        for rid, joined_room in (seen_by_alice.rooms.join.items() if hasattr(seen_by_alice, "rooms") else [])
        if rid == room_id
        for e in joined_room.timeline.events
    ]
    result = {
        "room": room_id,
        "alice": alice.user_id,
        "answers": answers,
        "uploads": uploads,
        "timeline": [e for e in timeline if of_interest(e, senders)],
        "alice_timeline": [e for e in alice_timeline if of_interest(e, senders)],
        "history": [e.source for e in getattr(history, "chunk", []) if of_interest(e.source, senders)],
    }
    if args.get("direct"):
        # What the homeserver stored, asked around imgate.
        direct = await login(args, "bob", server=args["direct"])
        stored = await direct.room_messages(room_id, start=since, limit=100)
        result["stored"] = [e.source for e in getattr(stored, "chunk", []) if of_interest(e.source, senders)]
        await direct.close()
    for c in (alice, bob, carol):
        if c:
            await c.close()
    return result


async def demo(args):
    alice = await login(args, "alice")
    bob = await login(args, "bob")
    created = await alice.room_create(invite=[bob.user_id], name="lobby")
    room_id = created.room_id
    await bob.join(room_id)
    since = (await bob.sync(timeout=0)).next_batch
    lines = []
    for body in args["send"]:
        r = await alice.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": body})
        if not hasattr(r, "event_id"):
            lines.append({"sent": body, "outcome": "blocked", "detail": getattr(r, "message", str(r))})
            continue
        received = None
        loop = asyncio.get_running_loop()
        end = loop.time() + 5
        while received is None and loop.time() < end:
            s = await bob.sync(timeout=500, since=since)
            since = getattr(s, "next_batch", since)
            for rid, joined in (s.rooms.join.items() if hasattr(s, "rooms") else []):
                for e in joined.timeline.events:
                    if e.source.get("event_id") == r.event_id:
                        received = e.source.get("content", {}).get("body")
        if received is None:
            lines.append({"sent": body, "outcome": "dropped", "detail": ""})
        else:
            lines.append({"sent": body, "outcome": "delivered" if received == body else "rewritten", "detail": received})
    await alice.close()
    await bob.close()
    if args.get("pretty"):
        for line in lines:
            print(f"\n  alice: {line['sent']}")
            if line["outcome"] == "blocked":
                print(f"  -> BLOCKED; alice's client gets M_FORBIDDEN: {line['detail']}")
            elif line["outcome"] == "rewritten":
                print(f"  -> delivered rewritten: {line['detail']}")
            else:
                print(f"  -> {line['outcome']}{' as sent' if line['outcome'] == 'delivered' else ''}")
        raise SystemExit(0)
    return {"conversation": lines}


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else None


async def bench(args):
    import time

    alice = await login(args, "alice")
    bob = await login(args, "bob")
    created = await alice.room_create(invite=[bob.user_id])
    room_id = created.room_id
    await bob.join(room_id)
    since = (await bob.sync(timeout=0)).next_batch
    arrived = {}

    async def syncer():
        nonlocal since
        while True:
            r = await bob.sync(timeout=1000, since=since)
            now = time.perf_counter()
            since = getattr(r, "next_batch", since)
            for rid, joined in (r.rooms.join.items() if hasattr(r, "rooms") else []):
                for e in joined.timeline.events:
                    body = e.source.get("content", {}).get("body", "")
                    arrived.setdefault(body, now)

    task = asyncio.create_task(syncer())
    text = lambda body: {"msgtype": "m.text", "body": body}
    for i in range(10):  # warm the connections
        await alice.room_send(room_id, "m.room.message", text(f"warm {i}"))
    sends, sent_at = [], {}
    for i in range(args["latency"]):
        body = f"lat {i}"
        t0 = time.perf_counter()
        r = await alice.room_send(room_id, "m.room.message", text(body))
        sends.append(time.perf_counter() - t0)
        sent_at[body] = t0
        if not hasattr(r, "event_id"):
            raise SystemExit(f"send failed: {r}")
    loop = asyncio.get_running_loop()
    end = loop.time() + 30
    while any(b not in arrived for b in sent_at) and loop.time() < end:
        await asyncio.sleep(0.05)
    delivery = [arrived[b] - t for b, t in sent_at.items() if b in arrived]
    per_sender = args["burst"] // args["concurrency"]

    async def sender(j):
        for i in range(per_sender):
            r = await alice.room_send(room_id, "m.room.message", text(f"burst {j} {i}"))
            if not hasattr(r, "event_id"):
                raise SystemExit(f"send failed: {r}")

    t0 = time.perf_counter()
    await asyncio.gather(*(sender(j) for j in range(args["concurrency"])))
    elapsed = time.perf_counter() - t0
    task.cancel()
    ms = lambda v: None if v is None else round(v * 1000, 2)
    result = {
        "send_p50": ms(percentile(sends, 0.5)),
        "send_p99": ms(percentile(sends, 0.99)),
        "delivery_p50": ms(percentile(delivery, 0.5)),
        "delivery_p99": ms(percentile(delivery, 0.99)),
        "delivered": len(delivery),
        "per_s": round(per_sender * args["concurrency"] / elapsed, 1),
    }
    await alice.close()
    await bob.close()
    return result


async def raw(args):
    alice = await login(args, "alice")
    token = alice.access_token
    await alice.close()
    out = []
    ctx = context(args)
    for req in args["requests"]:
        body = req.get("body")
        data = body.encode("latin-1") if isinstance(body, str) else None
        headers = {"Authorization": f"Bearer {token}", **req.get("headers", {})}
        request = urllib.request.Request(args["server"] + req["path"], data=data, method=req["method"], headers=headers)
        try:
            with urllib.request.urlopen(request, context=ctx) as r:
                out.append({"status": r.status, "json": json.loads(r.read() or b"null")})
        except urllib.error.HTTPError as e:
            text = e.read()
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = text.decode("latin-1")
            out.append({"status": e.code, "json": parsed})
    return {"answers": out, "token": token}


def main():
    scenario, args = sys.argv[1], json.loads(sys.argv[2])
    if scenario == "register":
        result = register(args)
    else:
        result = asyncio.run({"room": room, "raw": raw, "bench": bench, "demo": demo}[scenario](args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
