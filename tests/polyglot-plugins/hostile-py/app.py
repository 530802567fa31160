"""A deliberately hostile Python plugin for tests/polyglot.rs: the message
body picks the attack, anything else is allowed with the tag
`hostile:served`.

- `loop`: spins forever (the per-call deadline stops it);
- `bomb`: allocates until the memory cap refuses;
- `raise`: raises an exception (the call traps).
"""

from wit_world import exports
from wit_world.imports.types import EventView, VerdictOut


class Lifecycle(exports.Lifecycle):
    def init(self, config: str) -> None:
        pass


class Handler(exports.Handler):
    def handle(self, event: EventView, out: VerdictOut) -> None:
        body = event.body()
        if body == "loop":
            n = 0
            while True:
                n += 1
        if body == "bomb":
            hoard = []
            while True:
                hoard.append(bytearray(1 << 20))
        if body == "raise":
            raise RuntimeError("hostile plugin raised on purpose")
        out.tag("hostile:served")
