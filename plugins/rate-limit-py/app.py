"""rate-limit, in Python: a per-user message rate with a burst allowance.

A port of the Rust plugins/rate-limit (same config keys and behaviour), to
show the host interfaces from Python: `config` for the settings, `kv` for a
token bucket per user shared by every instance (updated with
compare-and-swap), `clock` for the refill, and `log` for a line when a user
first goes over the limit.

Grants: config, kv, clock, log. Built with componentize-py against this
directory's wit/ (world `rate-limit`); see README.md.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import clock, config, kv, log
from wit_world.imports.types import Direction, EventView, VerdictOut

KEYS = {"messages_per_minute", "burst", "directions", "exempt", "reason"}
# Thousandths of a message, so slow rates refill smoothly.
MILLI = 1000

settings = None


class Settings:
    def __init__(self, raw: dict):
        unknown = sorted(set(raw) - KEYS)
        if unknown:
            raise ValueError(f"unknown field `{unknown[0]}`, expected one of {sorted(KEYS)}")
        if "messages_per_minute" not in raw:
            raise ValueError("missing field `messages_per_minute`")
        self.per_minute = raw["messages_per_minute"]
        if not isinstance(self.per_minute, int) or self.per_minute < 1:
            raise ValueError("messages_per_minute must be at least 1")
        self.burst = raw.get("burst", 10)
        if not isinstance(self.burst, int) or self.burst < 0:
            raise ValueError("burst must be a whole number")
        self.directions = raw.get("directions", "outbound")
        if self.directions not in ("outbound", "inbound", "both"):
            raise ValueError('directions must be "outbound", "inbound" or "both"')
        exempt = raw.get("exempt", [])
        if not isinstance(exempt, list) or not all(isinstance(u, str) for u in exempt):
            raise ValueError("exempt must be a list of users")
        self.exempt = {u.lower() for u in exempt}
        self.reason = raw.get("reason", "rate limit: at most {rate} messages a minute")

    def counts(self, direction: Direction) -> bool:
        if self.directions == "both":
            return True
        wanted = Direction.INBOUND if self.directions == "inbound" else Direction.OUTBOUND
        return direction == wanted


def parse(state: bytes):
    try:
        tokens, at = state.decode().split(":", 1)
        return int(tokens), int(at)
    except ValueError:
        return None


def take(user: str) -> bool:
    """Takes one message from `user`'s bucket; False when it is empty."""
    key = f"bucket:{user}"
    capacity = max(settings.burst, 1) * MILLI
    for _ in range(8):
        now = clock.now_ms()
        old = kv.get(key)
        tokens, at = (old is not None and parse(old)) or (capacity, now)
        refilled = min(capacity, tokens + max(now - at, 0) * settings.per_minute * MILLI // 60_000)
        allowed = refilled >= MILLI
        left = refilled - MILLI if allowed else refilled
        if kv.compare_and_swap(key, old, f"{left}:{now}".encode()):
            return allowed
    raise RuntimeError("the bucket kept changing under us")


class Lifecycle(exports.Lifecycle):
    def init(self, config_json: str) -> None:
        global settings
        # Read through the `config` capability rather than the argument, to
        # show it: both hold the plugin's table from the operator's file.
        try:
            settings = Settings(json.loads(config.all()))
        except (ValueError, TypeError) as e:
            raise Err(str(e))
        log.log(log.Level.INFO, f"limiting to {settings.per_minute}/min, burst {settings.burst}")


class Interest(exports.Interest):
    def kinds(self):
        # Messages are what it counts; the host does not call it for the rest.
        return ["message"]


class Handler(exports.Handler):
    def handle(self, event: EventView, out: VerdictOut) -> None:
        # Calling nothing on `out` allows the event.
        direction = event.direction()
        # A message another plugin blocked is not sent: it does not count.
        if not settings.counts(direction) or event.has_tag("imgate:after-block"):
            return
        if direction == Direction.OUTBOUND:
            user = event.session().user
        else:
            user = event.sender()
        if user.lower() in settings.exempt:
            return
        try:
            allowed = take(user)
        except (Err, RuntimeError) as e:
            # Without its state the plugin cannot count; it lets the
            # message through and says so, as the Rust plugin does.
            log.log(log.Level.WARN, f"rate state unavailable for {user}: {e}")
            out.tag("rate-limit:state-unavailable")
            return
        if allowed:
            return
        log.log(log.Level.INFO, f"{user} is over the limit")
        out.tag("rate-limit:exceeded")
        out.block(settings.reason.replace("{rate}", str(settings.per_minute)))
