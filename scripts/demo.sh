#!/usr/bin/env bash
# make demo: a throwaway Prosody and a throwaway ngircd on loopback, one
# imgate in front of both with the sample chain (examples/demo.toml), and
# real clients (slixmpp for XMPP, Python's irc for IRC) having a short
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

echo "== imgate run: XMPP on 127.0.0.1:$xmpp_port, IRC (TLS) on 127.0.0.1:$irc_port"
sed -e "s#@ROOT@#$root#g" -e "s#@WORK@#$work#g" -e "s#@PROSODY_PORT@#$prosody_port#g" \
    -e "s#@XMPP_PORT@#$xmpp_port#g" -e "s#@ADMIN_PORT@#$admin_port#g" \
    -e "s#@NGIRCD_PORT@#$ngircd_port#g" -e "s#@IRC_PORT@#$irc_port#g" \
    "$root/examples/demo.toml" > "$work/imgate.toml"
IMGATE_ADMIN_TOKEN="$token" IMGATE_LOG="${IMGATE_LOG:-info}" "$imgate" run --config "$work/imgate.toml" 2>"$work/imgate.log" &
pids+=($!)
wait_port "$xmpp_port" "$work/imgate.log"
wait_port "$irc_port" "$work/imgate.log"

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
