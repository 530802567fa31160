"""`log` (capability `log`): lines in the host's structured log, with the
plugin's name."""

import importlib
from typing import Any


def _log() -> Any:
    return importlib.import_module("wit_world.imports.log")


def _at(level: str, message: str) -> None:
    log = _log()
    log.log(getattr(log.Level, level), message)


def debug(message: str) -> None:
    _at("DEBUG", message)


def info(message: str) -> None:
    _at("INFO", message)


def warn(message: str) -> None:
    _at("WARN", message)


def error(message: str) -> None:
    _at("ERROR", message)
