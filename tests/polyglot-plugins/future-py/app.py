"""A plugin from the future, for tests/polyglot.rs: built against
imgate:policy 0.2.3, whose `kv` has a `keys` function a 0.2.2 host lacks.
It loads on such a host all the same; a message `keys` calls the missing
function (a trap: the plugin's failure), anything else is allowed with the
tag `future:served`, and `count` uses `kv.increment`, which the host has.
"""

from wit_world import exports
from wit_world.imports import kv
from wit_world.imports.types import EventView, VerdictOut


class Lifecycle(exports.Lifecycle):
    def init(self, config: str) -> None:
        pass


class Handler(exports.Handler):
    def handle(self, event: EventView, out: VerdictOut) -> None:
        body = event.body()
        if body == "keys":
            out.tag(f"future:keys:{len(kv.keys())}")
        elif body == "count":
            out.tag(f"future:count:{kv.increment('n', 1)}")
        else:
            out.tag("future:served")
