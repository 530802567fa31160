"""The plugin's settings: the JSON `init` receives, checked against what the
plugin declares."""

import json
import typing
from typing import Any

from componentize_py_types import Err


def _type_name(kind: Any) -> str:
    return getattr(kind, "__name__", None) or str(kind)


def _matches(value: Any, kind: Any) -> bool:
    origin = typing.get_origin(kind)
    if origin is list:
        (item,) = typing.get_args(kind) or (object,)
        return isinstance(value, list) and all(_matches(v, item) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def parse(config: str, **fields: Any) -> dict[str, Any]:
    """`config` (init's argument) as a dict, checked against `fields`: each
    is a type (`str`, `bool`, `int`, `float`, `list[str]`, `dict`), which
    makes it required, or `(type, default)`. Raises `Err` (which refuses
    the plugin, with its text as the reason) for a key the plugin does not
    know, a missing one, or a value of the wrong type.

        s = settings.parse(config, words=list[str], reason=(str, "blocked"))
    """
    try:
        raw = json.loads(config)
    except ValueError as e:
        raise Err(f"config is not JSON: {e}")
    if not isinstance(raw, dict):
        raise Err("config must be a table")
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise Err(f"unknown field `{unknown[0]}`, expected one of {', '.join(sorted(fields))}")
    out: dict[str, Any] = {}
    for name, spec in fields.items():
        kind, default, required = (spec[0], spec[1], False) if isinstance(spec, tuple) else (spec, None, True)
        if name not in raw:
            if required:
                raise Err(f"missing field `{name}`")
            out[name] = default
            continue
        if not _matches(raw[name], kind):
            raise Err(f"`{name}` must be {_type_name(kind)}")
        out[name] = raw[name]
    return out
