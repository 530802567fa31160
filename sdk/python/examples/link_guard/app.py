"""link-guard: blocks outbound messages that link to hosts outside an
allow-list, tags inbound ones, and counts what it saw.

The guide's worked example (sdk/python/README.md), written the same way in
Rust (sdk/examples/link_guard.rs) and JavaScript (sdk/js/examples/link-guard):
links and hosts are found by the host's `match`, so the three agree on every
text, tricky ones included (a control character after a link, the Kelvin
sign in a host name).

Config: `allowed_domains`, hosts links may point to; subdomains count.
Grants: `match`, `metrics`.
"""

from componentize_py_types import Err
from imgate_sdk import matching, settings
from wit_world import exports
from wit_world.imports import metrics
from wit_world.imports.match import Matcher, Scope, normalize_host
from wit_world.imports.types import Direction, EventView, VerdictOut

# Set by Lifecycle.init; every instance is initialised before its first event.
allowed: list[str] = []
links: Matcher | None = None


def allows(host: str) -> bool:
    return any(host == d or host.endswith("." + d) for d in allowed)


class Lifecycle(exports.Lifecycle):
    def init(self, config: str) -> None:
        global allowed, links
        s = settings.parse(config, allowed_domains=list[str])
        allowed = []
        for d in s["allowed_domains"]:
            host = normalize_host(d)
            if host is None:
                raise Err(f"`allowed_domains`: `{d}` is not a host name")
            allowed.append(host)
        links = matching.compile(matching.detector("url"))
        # An event without a link is allowed: the host need not call us.
        links.call_only_on_hit(Scope.TEXTS)


class Handler(exports.Handler):
    def handle(self, event: EventView, out: VerdictOut) -> None:
        # Every text: the body, rich text, a subject, a file's link.
        for found in links.find_in(event, Scope.TEXTS):
            hit = found.hit
            if hit.host is not None and allows(hit.host):
                continue
            metrics.counter_add("foreign_links", 1)
            out.tag("link:external")
            if event.direction() == Direction.OUTBOUND:
                out.block(f"links to {hit.host or hit.text} may not be sent")
            return
