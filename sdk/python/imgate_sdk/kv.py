"""`kv` (capability `kv`) with text values: the plugin's namespace, shared by
its instances (and, on a PostgreSQL store, by every gateway)."""

import importlib
from typing import Any, Optional


def _kv() -> Any:
    return importlib.import_module("wit_world.imports.kv")


def get_str(key: str) -> Optional[str]:
    """The value as text, or None when absent. Raises `Err` when the store
    fails."""
    value = _kv().get(key)
    return None if value is None else bytes(value).decode("utf-8", errors="replace")


def set_str(key: str, value: str, ttl_ms: Optional[int] = None) -> None:
    _kv().set(key, value.encode("utf-8"), ttl_ms)


def increment(key: str, delta: int = 1) -> int:
    """Atomically adds `delta`; a missing key counts as 0."""
    return _kv().increment(key, delta)
