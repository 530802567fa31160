#!/usr/bin/env python3
"""Print the medians criterion measured, with ratios to the bare-call floor."""
import json
import pathlib

root = pathlib.Path(__file__).resolve().parent.parent / "target" / "criterion"
rows = {}
for est in sorted(root.glob("*/*/new/estimates.json")):
    group, name = est.parts[-4], est.parts[-3]
    rows[f"{group}/{name}"] = json.loads(est.read_text())["median"]["point_estimate"]

def fmt(ns):
    return f"{ns / 1000:.3f} µs" if ns >= 1000 else f"{ns:.1f} ns"

floor = {
    "per_event/a_chain_allow_all": "per_event/floor_bare_call_allow_all",
    "per_event/b_chain_keyword_block": "per_event/floor_bare_call_keyword_block",
}
print(f"{'benchmark':48} {'median':>12}  vs floor")
for name, ns in rows.items():
    ratio = ""
    if name in floor and floor[name] in rows:
        ratio = f"{ns / rows[floor[name]]:.2f}x"
    print(f"{name:48} {fmt(ns):>12}  {ratio}")
