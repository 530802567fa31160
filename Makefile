# imgate: the two quick-start commands are `make demo` and `make test`.
CARGO ?= cargo
# Every plugin component the demo, the tests and the benchmark load.
PLUGINS := -p allow-all -p keyword-block -p disclaimer -p rate-limit -p ethical-wall -p logger -p dlp -p archiver -p test-hostile -p test-scripted -p test-recorder

.PHONY: deps plugins build demo replay test lint bench bench-xmpp bench-irc bench-archive clean-cache

## Install the real servers and clients the tests and demo use (Prosody,
## ngircd, slixmpp, python3-irc) if missing, and the wasm32-wasip2 target.
deps:
	./scripts/install-deps.sh

## Build the plugin components for wasm32-wasip2 (target/wasm32-wasip2/plugin/*.wasm).
plugins:
	rustup target add wasm32-wasip2
	$(CARGO) build --target wasm32-wasip2 --profile plugin $(PLUGINS)
	$(CARGO) build --target wasm32-wasip2 --profile plugin -p imgate-sdk --example link_guard

## Build the imgate binary (target/release/imgate).
build:
	$(CARGO) build --release --workspace --bins

## The main job: a throwaway Prosody, imgate in front of it with the sample
## chain, and real XMPP clients talking through it (scripts/demo.sh).
demo: deps plugins build
	./scripts/demo.sh

## Replay the sample transcript through the sample chain (no network).
replay: plugins build
	./target/release/imgate check --config examples/imgate.toml
	./target/release/imgate replay --config examples/imgate.toml examples/transcript.jsonl

## Every test: unit tests, the SDK harness tests, the hostile corpus, the CLI.
test: deps plugins build
	$(CARGO) test --release --workspace

## Formatting and lints, as CI runs them.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## Benchmarks (not run in CI): per-event cost against a bare wasmtime call.
bench: plugins
	$(CARGO) bench -p imgate --bench chain
	python3 scripts/bench_summary.py

## XMPP through imgate against straight to Prosody: msg/s, p50/p99 latency.
bench-xmpp: deps plugins build
	$(CARGO) bench -p imgate-tests --bench xmpp_proxy

## IRC through imgate against straight to ngircd: msg/s, p50/p99 latency.
bench-irc: deps plugins build
	$(CARGO) bench -p imgate-tests --bench irc_proxy

## The archive: durable appends/s (one per commit, group commit), search on 1M records.
bench-archive:
	$(CARGO) bench -p imgate --bench archive

clean-cache:
	rm -rf target/imgate-cache
