#!/usr/bin/env bash
# make demo: a throwaway Prosody on loopback, imgate in front of it with the
# sample chain (examples/xmpp-demo.toml), and two real XMPP clients
# (slixmpp) having a short scripted conversation through it. Prints what
# was delivered, rewritten and blocked, then the gateway's own counters.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
imgate="$root/target/release/imgate"
work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 1 200); do
        if /usr/bin/python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "nothing listening on $1; see $2" >&2; cat "$2" >&2; exit 1
}

prosody_port=$(free_port); xmpp_port=$(free_port); admin_port=$(free_port)
token="demo-$(date +%s)"

echo "== certificates (imgate cert)"
"$imgate" cert --name localhost --name conference.localhost --cert "$work/prosody.crt" --key "$work/prosody.key" >/dev/null
"$imgate" cert --name localhost --name 127.0.0.1 --cert "$work/gateway.crt" --key "$work/gateway.key" >/dev/null

echo "== Prosody on 127.0.0.1:$prosody_port (users alice, bob)"
mkdir -p "$work/data"
cat > "$work/prosody.cfg.lua" <<LUA
run_as_root = true
pidfile = "$work/prosody.pid"
data_path = "$work/data"
log = { { levels = { min = "warn" }, to = "file", filename = "$work/prosody.log" } }
interfaces = { "127.0.0.1" }
c2s_ports = { $prosody_port }
c2s_direct_tls_ports = { }
s2s_ports = { }
http_ports = { }
https_ports = { }
modules_disabled = { "s2s" }
modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "carbons"; "smacks"; "ping" }
authentication = "internal_hashed"
ssl = { certificate = "$work/prosody.crt"; key = "$work/prosody.key"; }
VirtualHost "localhost"
LUA
prosodyctl --config "$work/prosody.cfg.lua" register alice localhost alice-pw >/dev/null
prosodyctl --config "$work/prosody.cfg.lua" register bob localhost bob-pw >/dev/null
prosody --config "$work/prosody.cfg.lua" -F >"$work/prosody.out" 2>&1 &
pids+=($!)
wait_port "$prosody_port" "$work/prosody.out"

echo "== imgate run on 127.0.0.1:$xmpp_port, in front of Prosody"
sed -e "s#@ROOT@#$root#g" -e "s#@WORK@#$work#g" -e "s#@PROSODY_PORT@#$prosody_port#g" \
    -e "s#@XMPP_PORT@#$xmpp_port#g" -e "s#@ADMIN_PORT@#$admin_port#g" \
    "$root/examples/xmpp-demo.toml" > "$work/imgate.toml"
IMGATE_ADMIN_TOKEN="$token" IMGATE_LOG="${IMGATE_LOG:-info}" "$imgate" run --config "$work/imgate.toml" 2>"$work/imgate.log" &
pids+=($!)
wait_port "$xmpp_port" "$work/imgate.log"

echo "== alice@localhost writes to bob@localhost through imgate (slixmpp, STARTTLS)"
args=$(cat <<JSON
{"pretty": true, "server": ["127.0.0.1", $xmpp_port], "ca": "$work/gateway.crt",
 "users": {"alice": ["alice@localhost", "alice-pw"], "bob": ["bob@localhost", "bob-pw"]},
 "send": ["Hi Bob, lunch at noon?",
          "The numbers are confidential until Friday.",
          "See you there.",
          "Any news on project falcon?"]}
JSON
)
/usr/bin/python3 "$root/tests/clients/xmpp_client.py" demo "$args"

echo
echo "== the gateway's counters (GET /connections on the admin API)"
/usr/bin/python3 - "$admin_port" "$token" <<'PY'
import json, sys, urllib.request
req = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/connections",
                             headers={"Authorization": f"Bearer {sys.argv[2]}"})
x = json.load(urllib.request.urlopen(req))["adapters"]["xmpp"]
print(f"  connections: {x['connections']['total']}, events judged: {x['events']}, verdicts: {x['verdicts']}")
PY
echo
echo "== imgate's log of the sessions"
grep -E "session (started|closed)" "$work/imgate.log" | sed -e 's/^/  /' | cut -c1-200
