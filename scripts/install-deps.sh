#!/usr/bin/env bash
# Installs what the tests and the demo run against, if it is missing:
# Debian's Prosody, ngircd and PostgreSQL servers and the slixmpp and irc
# Python clients (for /usr/bin/python3), Chromium, its WebDriver and
# selenium (the console's browser tests), plus the wasm32-wasip2 Rust target.
# Idempotent and quick when everything is there.
set -euo pipefail

rustup target add wasm32-wasip2 >/dev/null 2>&1 || rustup target add wasm32-wasip2

missing=()
command -v prosody >/dev/null 2>&1 || missing+=(prosody)
command -v ngircd >/dev/null 2>&1 || missing+=(ngircd)
# The tests start their own clusters with initdb and pg_ctl, which Debian
# keeps under /usr/lib/postgresql/<version>/bin.
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || command -v pg_ctl >/dev/null 2>&1 || missing+=(postgresql)
/usr/bin/python3 -c 'import slixmpp' >/dev/null 2>&1 || missing+=(python3-slixmpp)
/usr/bin/python3 -c 'import irc' >/dev/null 2>&1 || missing+=(python3-irc)
# The console's browser tests: Chromium driven over WebDriver by selenium.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
/usr/bin/python3 -c 'import selenium' >/dev/null 2>&1 || missing+=(python3-selenium)
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

echo "installing: ${missing[*]}"
sudo=""
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || {
        echo "need root (or sudo) to install: apt-get install -y ${missing[*]}" >&2
        exit 1
    }
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${missing[@]}" >/dev/null
# Tests run their own servers on loopback; a packaged service started by
# the install would only hold the default ports.
for service in prosody ngircd postgresql; do
    $sudo service "$service" stop >/dev/null 2>&1 || true
done
