"""keyword-block, in Python: blocks messages that contain a configured word,
and room subjects, reactions and kinds added after it was written whose text
does.

The same behaviour and config keys as the Rust plugins/keyword-block:
- `words`: list of words or phrases (required, non-empty);
- `match`: "whole-word" (default) or "substring";
- `case_insensitive`: fold case before matching (default true);
- `reason`: text shown to the sender; `{word}` is replaced by the match.

Built with componentize-py against wit/ (world `policy`); see
sdk/python/README.md.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from word_chars import is_word_char
from wit_world.imports.types import EventView, VerdictOut

# Kinds judged by their texts (`texts()`) when they have no body. Kinds this
# plugin does not know are judged the same way; the rest are allowed.
KNOWN_WITHOUT_TEXT = {"presence", "file-offer", "membership", "session-start", "session-end"}

DEFAULT_REASON = 'message blocked: contains "{word}"'
KEYS = {"words", "match", "case_insensitive", "reason"}

# Set by Lifecycle.init; every instance is initialised before its first event.
settings = None


class Settings:
    def __init__(self, raw: dict):
        unknown = sorted(set(raw) - KEYS)
        if unknown:
            raise ValueError(f"unknown field `{unknown[0]}`, expected one of {sorted(KEYS)}")
        words = raw.get("words")
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise ValueError("`words` must be a list of strings")
        self.words = [w for w in words if w.strip()]
        if not self.words:
            raise ValueError("`words` must list at least one non-empty word")
        self.mode = raw.get("match", "whole-word")
        if self.mode not in ("whole-word", "substring"):
            raise ValueError(f"unknown variant `{self.mode}`, expected `whole-word` or `substring`")
        self.case_insensitive = raw.get("case_insensitive", True)
        if not isinstance(self.case_insensitive, bool):
            raise ValueError("`case_insensitive` must be true or false")
        self.reason = raw.get("reason", DEFAULT_REASON)
        if not isinstance(self.reason, str):
            raise ValueError("`reason` must be a string")
        fold = str.lower if self.case_insensitive else (lambda s: s)
        self.patterns = [fold(w) for w in self.words]
        self.fold = fold

    def find(self, body: str):
        """The configured word that matches first (earliest end), if any."""
        text = self.fold(body)
        best = None
        for index, pattern in enumerate(self.patterns):
            start = text.find(pattern)
            while start != -1:
                end = start + len(pattern)
                if self.mode == "substring" or is_whole_word(text, start, end):
                    if best is None or end < best[0]:
                        best = (end, index)
                    break
                start = text.find(pattern, start + 1)
        return None if best is None else self.words[best[1]]


def is_whole_word(text: str, start: int, end: int) -> bool:
    before = text[start - 1] if start > 0 else ""
    after = text[end] if end < len(text) else ""
    return not (before and is_word_char(before)) and not (after and is_word_char(after))


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
        body = event.body()
        if body is not None:
            word = settings.find(body)
        elif event.kind() in KNOWN_WITHOUT_TEXT:
            word = None
        else:
            word = next((w for w in map(lambda t: settings.find(t.value), event.texts()) if w), None)
        if word is not None:
            out.tag("keyword:blocked")
            out.block(settings.reason.replace("{word}", word))
