#!/usr/bin/env python3
"""Writes a throwaway Synapse's files into DIR for the tests, the demo and
the bench: loopback on PORT, SQLite, registration by shared SECRET only,
no federation, rate limits off, logs in DIR.

    synapse_setup.py DIR PORT SECRET

Then: python -m synapse.app.homeserver -c DIR/homeserver.yaml
"""

import base64
import os
import sys

d, port, secret = sys.argv[1], int(sys.argv[2]), sys.argv[3]
seed = base64.b64encode(os.urandom(32)).decode().rstrip("=")
with open(f"{d}/signing.key", "w") as f:
    f.write(f"ed25519 a_test {seed}\n")
with open(f"{d}/log.yaml", "w") as f:
    f.write(f"""version: 1
formatters:
  f:
    format: '%(asctime)s %(levelname)s %(name)s %(message)s'
handlers:
  file:
    class: logging.FileHandler
    filename: {d}/homeserver.log
    formatter: f
root:
  level: WARNING
  handlers: [file]
disable_existing_loggers: false
""")
unlimited = "{per_second: 100000, burst_count: 100000}"
with open(f"{d}/homeserver.yaml", "w") as f:
    f.write(f"""server_name: "localhost"
pid_file: {d}/homeserver.pid
listeners:
  - port: {port}
    bind_addresses: ['127.0.0.1']
    type: http
    tls: false
    x_forwarded: false
    resources:
      - names: [client]
        compress: false
database:
  name: sqlite3
  args:
    database: {d}/homeserver.db
media_store_path: {d}/media
signing_key_path: {d}/signing.key
log_config: {d}/log.yaml
registration_shared_secret: "{secret}"
enable_registration: false
report_stats: false
trusted_key_servers: []
suppress_key_server_warning: true
federation_domain_whitelist: []
presence:
  enabled: false
max_upload_size: 10M
rc_message: {unlimited}
rc_registration: {unlimited}
rc_login:
  address: {unlimited}
  account: {unlimited}
  failed_attempts: {unlimited}
rc_joins:
  local: {unlimited}
  remote: {unlimited}
rc_invites:
  per_room: {unlimited}
  per_user: {unlimited}
  per_issuer: {unlimited}
""")
