"""keyword-block, in Python: blocks messages that contain a configured word,
and room subjects, reactions and kinds added after it was written whose text
does.

The same behaviour and config keys as the Rust plugins/keyword-block:
- `words`: list of words or phrases (required, non-empty);
- `match`: "whole-word" (default) or "substring";
- `case_insensitive`: fold case before matching (default true);
- `reason`: text shown to the sender; `{word}` is replaced by the match.

The matching is the host's (`match`, granted like any capability): the
words are compiled once, in `init`, and each event's text is searched in
native code where it lies, without being copied into Python. The plugin
promises to allow every event without a hit (`call_only_on_hit`), so the
host calls it only for events that hold one of the words. A word
character, case folding and the search order are the host's, so this
plugin gives the Rust one's verdicts by construction.

Built with componentize-py against wit/world.wit (world `keyword-block`:
the `policy` role and `match`); see sdk/python/README.md.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports.match import Keywords, Matcher, Rule_Keywords, Scope
from wit_world.imports.types import EventView, VerdictOut

# The kinds judged by their body only (none: allowed). A reaction, and any
# kind added after this plugin was written, is judged by its texts.
JUDGED_BY_BODY = {"message", "subject", "presence", "file-offer", "membership", "session-start", "session-end"}

DEFAULT_REASON = 'message blocked: contains "{word}"'
KEYS = {"words", "match", "case_insensitive", "reason"}

# Set by Lifecycle.init; every instance is initialised before its first event.
settings = None


class Settings:
    def __init__(self, raw: dict):
        if not isinstance(raw, dict):
            raise ValueError("config must be a table")
        unknown = sorted(set(raw) - KEYS)
        if unknown:
            raise ValueError(f"unknown field `{unknown[0]}`, expected one of {sorted(KEYS)}")
        words = raw.get("words")
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise ValueError("`words` must be a list of strings")
        self.words = [w for w in words if w.strip()]
        if not self.words:
            raise ValueError("`words` must list at least one non-empty word")
        mode = raw.get("match", "whole-word")
        if mode not in ("whole-word", "substring"):
            raise ValueError(f"unknown variant `{mode}`, expected `whole-word` or `substring`")
        case_insensitive = raw.get("case_insensitive", True)
        if not isinstance(case_insensitive, bool):
            raise ValueError("`case_insensitive` must be true or false")
        self.reason = raw.get("reason", DEFAULT_REASON)
        if not isinstance(self.reason, str):
            raise ValueError("`reason` must be a string")
        self.matcher = Matcher.compile([Rule_Keywords(Keywords(self.words, mode == "whole-word", case_insensitive))])
        # An event without any of the words is allowed: the host need not
        # call this plugin for it at all.
        self.matcher.call_only_on_hit(Scope.BODY_ELSE_TEXTS)


class Lifecycle(exports.Lifecycle):
    def init(self, config: str) -> None:
        global settings
        try:
            settings = Settings(json.loads(config))
        except (ValueError, TypeError) as e:
            raise Err(str(e))


class Handler(exports.Handler):
    def handle(self, event: EventView, out: VerdictOut) -> None:
        # Calling nothing on `out` allows the event.
        found = settings.matcher.first_in(event, Scope.BODY_ELSE_TEXTS)
        if found is None:
            return
        if found.role != "body" and event.kind() in JUDGED_BY_BODY:
            return
        out.tag("keyword:blocked")
        out.block(settings.reason.replace("{word}", settings.words[found.hit.item]))
