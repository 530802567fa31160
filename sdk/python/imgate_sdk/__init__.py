"""imgate-sdk for Python: typed helpers over the bindings componentize-py
generates from a plugin's world (the `wit_world` package), in the role the
Rust SDK's typed host calls play.

- `settings.parse(config, words=list[str], reason=(str, "…"))`: the
  operator's table, checked (an unknown key, a missing one or a wrong type
  refuses the plugin with the reason, as Rust's `deny_unknown_fields`).
- `matching`: rules for the host's matcher (`words`, `regex`, `detector`),
  `compile`, and `span` to turn a hit's UTF-8 byte offsets into `str`
  indices.
- `kv`, `log`: text in and out, levels as functions.

Each module imports the capability it wraps when first called, so a plugin
whose world does not import that capability can still import this package.
"""

from . import kv, log, matching, settings

__all__ = ["kv", "log", "matching", "settings"]
__version__ = "0.1.0"
