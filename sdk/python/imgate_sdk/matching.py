"""The host's matcher (capability `match`, contract 0.2.2): rules, compiled
once in `init`; hits found by the host in native code, by the same rules
for every plugin language. See wit/README.md, "Matching text"."""

import importlib
from typing import Any, Iterable


def _m() -> Any:
    return importlib.import_module("wit_world.imports.match")


def words(words: Iterable[str], whole_word: bool = True, ignore_case: bool = True) -> Any:
    """Any of `words`: whole words (no Unicode letter or number right before
    or after) and ignoring case (Unicode simple case folding) unless told
    otherwise."""
    m = _m()
    return m.Rule_Keywords(m.Keywords(list(words), whole_word, ignore_case))


def regex(pattern: str, ignore_case: bool = False) -> Any:
    """A regular expression in Rust's `regex` syntax (linear time)."""
    m = _m()
    return m.Rule_Regex(m.Pattern(pattern, ignore_case))


def detector(name: str) -> Any:
    """A built-in detector: card, iban, ssn, secret, aws-key, private-key,
    email, url."""
    return _m().Rule_Detector(name)


def compile(*rules: Any) -> Any:
    """A `Matcher` for `rules`; raises `Err` naming the rule at fault."""
    return _m().Matcher.compile(list(rules))


def span(text: str, hit: Any) -> tuple[int, int]:
    """A hit's place in `text` as `str` indices (the host counts UTF-8
    bytes): `text[start:end] == hit.text`."""
    data = text.encode("utf-8")
    start = len(data[: hit.start].decode("utf-8", errors="ignore"))
    return start, start + len(hit.text)
