#!/usr/bin/env bash
# Coverage-guided fuzzing with libFuzzer on the stable toolchain: the
# instrumentation cargo-fuzz would ask for, passed as plain -C flags (no
# -Z, no sanitizer runtime), into a target dir of its own.
#
#   scripts/fuzz.sh TARGET [SECONDS] [libFuzzer options...]   run one target
#   scripts/fuzz.sh all [SECONDS]                             run each in turn
#   scripts/fuzz.sh build                                     build only
#
# Targets: irc_codec irc_split_vs_ngircd xmpp_codec replay_json config.
# New inputs go to target/fuzz/corpus/TARGET; crashes to target/fuzz/artifacts.
# `scripts/fuzz.sh merge TARGET` folds the new inputs into fuzz/corpus/TARGET
# (set-cover merge: the fewest inputs that keep every feature).
set -euo pipefail
cd "$(dirname "$0")/.."

TARGETS="irc_codec irc_split_vs_ngircd xmpp_codec replay_json config"
export CARGO_TARGET_DIR=target/fuzz
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions -Coverflow-checks"

# An explicit --target keeps RUSTFLAGS off build scripts and proc-macros,
# which must not be instrumented (they link without libFuzzer).
HOST=$(rustc -vV | sed -n 's/^host: //p')
BIN=target/fuzz/$HOST/release

build() {
    cargo build --release -p imgate-fuzz --features libfuzzer --bins --target "$HOST"
}

run() {
    local target=$1 seconds=${2:-60}
    shift 2 || shift $#
    mkdir -p "target/fuzz/corpus/$target" target/fuzz/artifacts
    "$BIN/$target" "target/fuzz/corpus/$target" "fuzz/corpus/$target" \
        -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=4096 \
        -artifact_prefix="target/fuzz/artifacts/$target-" -print_final_stats=1 "$@"
}

case "${1:-}" in
build) build ;;
all)
    build
    for t in $TARGETS; do run "$t" "${2:-60}"; done
    ;;
merge)
    # The smallest set of inputs (up to 16 KiB) that keeps every feature.
    t=$2
    mkdir -p "fuzz/corpus/$t.merged"
    "$BIN/$t" -set_cover_merge=1 -max_len=16384 "fuzz/corpus/$t.merged" "fuzz/corpus/$t" "target/fuzz/corpus/$t"
    rm -rf "fuzz/corpus/$t" && mv "fuzz/corpus/$t.merged" "fuzz/corpus/$t"
    ;;
"" | -h | --help) sed -n '2,13p' "$0" ;;
*)
    build
    run "$@"
    ;;
esac
