"""{{name}}: an imgate plugin. `imgate plugin new` wrote this sample; make it
yours. The guide: {{sdk}}/python/README.md
@@if policy

As written it blocks messages that hold one of the configured `words`.
@@end
@@if observer

It watches every event's final outcome.
@@end
"""

from componentize_py_types import Err
from imgate_sdk import settings
@@if log
from imgate_sdk import log
@@end
@@if kv
from imgate_sdk import kv
@@end
@@if match
from imgate_sdk import matching
@@end
from wit_world import exports
@@if clock
from wit_world.imports import clock
@@end
@@if config
from wit_world.imports import config
@@end
@@if archive
from wit_world.imports import archive
@@end
@@if metrics
from wit_world.imports import metrics
@@end
@@if bridge
from wit_world.imports.bridge import Outgoing
@@end
@@if match
from wit_world.imports.match import Matcher, Scope
@@end
from wit_world.imports.types import EventView, OutcomeView, VerdictOut

DEFAULT_REASON = 'message blocked: it contains "{word}"'

# Set by Lifecycle.init; every instance is initialised before its first event.
words: list[str] = []
reason = DEFAULT_REASON
@@if match
matcher: Matcher | None = None
@@end
@@if bridge
report_to: list[str] | None = None
@@end


class Lifecycle(exports.Lifecycle):
    def init(self, config: str) -> None:
        """`config` is the plugin's table from the operator's file, as JSON.
        Raising Err refuses the plugin with that reason."""
@@if !policy
        settings.parse(config)  # no settings yet: any key is a mistake
@@if log
        log.info("ready")
@@end
@@end
@@if policy
        global words, reason
@@if !bridge
        s = settings.parse(config, words=list[str], reason=(str, DEFAULT_REASON))
@@end
@@if bridge
        global report_to
        s = settings.parse(config, words=list[str], reason=(str, DEFAULT_REASON), report_to=(list[str], None))
        report_to = s["report_to"]
@@end
        words, reason = s["words"], s["reason"]
        if not words:
            raise Err("`words` must list at least one word")
@@if match
        global matcher
        # The host matches: whole words, Unicode case folding.
        matcher = matching.compile(matching.words(words))
        # A message without a word is allowed: the host need not call us.
        matcher.call_only_on_hit(Scope.BODY)
@@end
@@if log
        log.info(f"ready with {len(words)} words")
@@end
@@end
@@if policy


def word_in(event: EventView) -> str | None:
    """The configured word the event's body holds, if any."""
@@if match
    found = matcher.first_in(event, Scope.BODY)
    return None if found is None else words[found.hit.item]
@@end
@@if !match
    body = event.body()  # None for kinds without one and for encrypted messages
    if body is None:
        return None
    body = body.lower()
    return next((w for w in words if w.lower() in body), None)
@@end
@@end
@@if policy


class Handler(exports.Handler):
    def handle(self, event: EventView, out: VerdictOut) -> None:
        # Calling nothing on `out` allows the event.
        word = word_in(event)
        if word is None:
            return
        sender = event.sender()
        text = reason
@@if config
        # Read at call time: the operator's current setting.
        text = config.get_string("reason") or reason
@@end
        out.tag("{{ns}}:blocked")
        out.block(text.replace("{word}", word))
@@if kv
        try:
            # Shared by every instance (and gateway): how often each sender was stopped.
            out.set_attribute("{{ns}}.times", str(kv.increment(f"blocked:{sender}")))
        except Err:
            pass
@@end
@@if clock
        out.set_attribute("{{ns}}.at-ms", str(clock.now_ms()))
@@end
@@if metrics
        metrics.counter_add("blocked", 1)
@@end
@@if log
        log.info(f"blocked a message from {sender}")
@@end
@@if archive
        try:
            archive.append(event, [("{{ns}}.word", word)])
        except Err:
            pass
@@end
@@if bridge
        if report_to:
            report = Outgoing(report_to[0], report_to[1])
            report.body(f'{sender} was stopped from sending "{word}"')
            try:
                report.send()
            except Err:
                pass
@@end
@@end
@@if observer


class Observer(exports.Observer):
    def observe(self, event: EventView, outcome: OutcomeView) -> None:
        action = outcome.action()
@@if log
        log.debug(f"{event.kind()} {event.id()}: {action}")
@@end
@@if metrics
        metrics.counter_add(f"outcome_{action}", 1)
@@end
@@if kv
        kv.increment(f"outcomes:{action}")
@@end
@@if archive
        archive.append(event, [])
@@end
@@end
