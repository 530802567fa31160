// A deliberately hostile JavaScript plugin for tests/polyglot.rs: the
// message body picks the attack, anything else is allowed with the tag
// `hostile:served`.
//
// - `loop`: spins forever (the per-call deadline stops it);
// - `bomb`: allocates until the memory cap refuses;
// - `throw`: throws (the call traps).

export const lifecycle = { init(_config) {} };

export const handler = {
  handle(event, out) {
    const body = event.body();
    if (body === "loop") {
      let n = 0;
      for (;;) n++;
    }
    if (body === "bomb") {
      const hoard = [];
      for (;;) hoard.push(new Uint8Array(1 << 20).fill(1));
    }
    if (body === "throw") throw new Error("hostile plugin threw on purpose");
    out.tag("hostile:served");
  },
};
