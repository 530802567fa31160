#!/usr/bin/env bash
# make demo: a throwaway Prosody, ngircd and Synapse on loopback, one
# imgate in front of all three with the sample chain (examples/demo.toml),
# and real clients (slixmpp for XMPP, Python's irc for IRC, matrix-nio for
# Matrix) having a short
# scripted conversation through it. Prints what was delivered, rewritten
# and blocked on each network, then the gateway's own counters.
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
ngircd_port=$(free_port); irc_port=$(free_port)
synapse_port=$(free_port); matrix_port=$(free_port)
mxpy="$root/target/matrix/bin/python"
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

echo "== ngircd on 127.0.0.1:$ngircd_port"
cat > "$work/ngircd.conf" <<CONF
[Global]
Name = irc.localhost
Info = imgate demo
Listen = 127.0.0.1
Ports = $ngircd_port
MotdPhrase = imgate demo
PidFile = $work/ngircd.pid
[Limits]
MaxPenaltyTime = 0
[Options]
DNS = no
Ident = no
PAM = no
CONF
ngircd -n -f "$work/ngircd.conf" >"$work/ngircd.out" 2>&1 &
pids+=($!)
wait_port "$ngircd_port" "$work/ngircd.out"

echo "== Synapse on 127.0.0.1:$synapse_port"
mkdir -p "$work/synapse"
"$mxpy" "$root/tests/clients/synapse_setup.py" "$work/synapse" "$synapse_port" demo-secret
(cd "$work/synapse" && exec "$mxpy" -m synapse.app.homeserver -c homeserver.yaml) >"$work/synapse.out" 2>&1 &
pids+=($!)
wait_port "$synapse_port" "$work/synapse.out"
"$mxpy" "$root/tests/clients/matrix_client.py" register \
    "{\"server\": \"http://127.0.0.1:$synapse_port\", \"secret\": \"demo-secret\", \"users\": [[\"alice\", \"alice-pw\"], [\"bob\", \"bob-pw\"]]}" >/dev/null

echo "== imgate run: XMPP on 127.0.0.1:$xmpp_port, IRC (TLS) on 127.0.0.1:$irc_port, Matrix (HTTPS) on 127.0.0.1:$matrix_port"
sed -e "s#@ROOT@#$root#g" -e "s#@WORK@#$work#g" -e "s#@PROSODY_PORT@#$prosody_port#g" \
    -e "s#@XMPP_PORT@#$xmpp_port#g" -e "s#@ADMIN_PORT@#$admin_port#g" \
    -e "s#@NGIRCD_PORT@#$ngircd_port#g" -e "s#@IRC_PORT@#$irc_port#g" \
    -e "s#@SYNAPSE_PORT@#$synapse_port#g" -e "s#@MATRIX_PORT@#$matrix_port#g" \
    "$root/examples/demo.toml" > "$work/imgate.toml"
IMGATE_ADMIN_TOKEN="$token" IMGATE_LOG="${IMGATE_LOG:-info}" "$imgate" run --config "$work/imgate.toml" 2>"$work/imgate.log" &
pids+=($!)
wait_port "$xmpp_port" "$work/imgate.log"
wait_port "$irc_port" "$work/imgate.log"
wait_port "$matrix_port" "$work/imgate.log"

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
echo "== alice and bob on IRC, #lobby, through imgate (Python irc, TLS) — the same chain"
irc_args=$(cat <<JSON
{"server": ["127.0.0.1", $irc_port], "tls": true, "ca": "$work/gateway.crt", "channel": "#lobby",
 "send": [["msg", "channel", "Morning all, standup in 5"],
          ["msg", "channel", "Reminder: the merger is confidential"],
          ["action", "channel", "grabs a coffee"]],
 "expect": 2}
JSON
)
/usr/bin/python3 "$root/tests/clients/irc_client.py" demo "$irc_args"

echo
echo "== alice and bob in a Matrix room through imgate (matrix-nio, HTTPS) — the same chain"
mx_args=$(cat <<JSON
{"pretty": true, "server": "https://localhost:$matrix_port", "ca": "$work/gateway.crt",
 "users": {"alice": ["alice", "alice-pw"], "bob": ["bob", "bob-pw"]},
 "send": ["Good morning from Matrix",
          "Insider tip: buy before Friday",
          "Back to work."]}
JSON
)
"$mxpy" "$root/tests/clients/matrix_client.py" demo "$mx_args"

echo
echo "== the gateway's counters (GET /connections on the admin API)"
/usr/bin/python3 - "$admin_port" "$token" <<'PY'
import json, sys, urllib.request
req = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/connections",
                             headers={"Authorization": f"Bearer {sys.argv[2]}"})
for network, x in sorted(json.load(urllib.request.urlopen(req))["adapters"].items()):
    print(f"  {network}: connections {x['connections']['total']}, events judged {x['events']}, verdicts {x['verdicts']}")
PY
echo
echo "== imgate's log of the sessions"
grep -E "session (started|closed)" "$work/imgate.log" | sed -e 's/^/  /' | cut -c1-200
