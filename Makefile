# imgate: the two quick-start commands are `make demo` and `make test`.
CARGO ?= cargo
# Every plugin component the demo, the tests and the benchmark load.
PLUGINS := -p allow-all -p keyword-block -p disclaimer -p rate-limit -p ethical-wall -p logger -p dlp -p archiver -p bridge -p test-hostile -p test-scripted -p test-recorder

# Plugins written in Python and JavaScript, built with the pinned tools of
# sdk/python/requirements.txt and sdk/js/package-lock.json.
PLUGIN_DIR := target/wasm32-wasip2/plugin
PY_TOOLS := target/sdk-tools/python
MATRIX_VENV := target/matrix
COMPONENTIZE_PY := $(PY_TOOLS)/bin/componentize-py
COMPONENTIZE_JS := sdk/js/node_modules/.bin/componentize-js
# StarlingMonkey without the wasi:http server (imgate plugins are not HTTP
# handlers); stdio, clocks and random stay and are linked deny-all.
JS_FLAGS := -d http fetch-event
WIT := $(wildcard wit/*.wit)
POLYGLOT := $(PLUGIN_DIR)/keyword_block_py.wasm $(PLUGIN_DIR)/rate_limit_py.wasm \
	$(PLUGIN_DIR)/keyword_block_js.wasm $(PLUGIN_DIR)/test_hostile_py.wasm $(PLUGIN_DIR)/test_hostile_js.wasm \
	$(PLUGIN_DIR)/test_future_py.wasm $(PLUGIN_DIR)/link_guard_py.wasm $(PLUGIN_DIR)/link_guard_js.wasm

.PHONY: deps sdk-tools plugins build demo replay test lint bench bench-xmpp bench-irc bench-allocs bench-sessions bench-bridge bench-matrix bench-store bench-console bench-languages screenshots fuzz clean-cache

## Install the real servers and clients the tests and demo use (Prosody,
## ngircd, slixmpp, python3-irc, Chromium + chromedriver + selenium; Synapse and matrix-nio in a venv under
## target/matrix) if missing, and the wasm32-wasip2 target.
deps: $(MATRIX_VENV)/.installed
	./scripts/install-deps.sh

# Synapse and matrix-nio in a venv of their own (the Matrix tests' server
# and clients), pinned by tests/clients/matrix-requirements.txt.
$(MATRIX_VENV)/.installed: tests/clients/matrix-requirements.txt
	python3 -m venv $(MATRIX_VENV)
	$(MATRIX_VENV)/bin/pip install --quiet --disable-pip-version-check -r $<
	touch $@

## Build the plugin components for wasm32-wasip2 (target/wasm32-wasip2/plugin/*.wasm):
## the Rust ones with cargo, the Python and JavaScript ones with their tools.
plugins: $(POLYGLOT)
	rustup target add wasm32-wasip2
	$(CARGO) build --target wasm32-wasip2 --profile plugin $(PLUGINS)
	$(CARGO) build --target wasm32-wasip2 --profile plugin -p imgate-sdk --example link_guard

## componentize-py (in a venv under target/) and componentize-js + jco (npm ci in sdk/js).
sdk-tools: $(COMPONENTIZE_PY) $(COMPONENTIZE_JS)

$(COMPONENTIZE_PY): sdk/python/requirements.txt
	python3 -m venv $(PY_TOOLS)
	$(PY_TOOLS)/bin/pip install --quiet --disable-pip-version-check -r $<
	touch $@

$(COMPONENTIZE_JS): sdk/js/package.json sdk/js/package-lock.json
	cd sdk/js && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(PLUGIN_DIR)/keyword_block_py.wasm: plugins/keyword-block-py/app.py plugins/keyword-block-py/wit/world.wit $(WIT) | $(COMPONENTIZE_PY)
	@mkdir -p $(@D)
	$(COMPONENTIZE_PY) -q -d plugins/keyword-block-py/wit -w keyword-block componentize -p plugins/keyword-block-py app -o $@

$(PLUGIN_DIR)/rate_limit_py.wasm: plugins/rate-limit-py/app.py plugins/rate-limit-py/wit/world.wit $(WIT) | $(COMPONENTIZE_PY)
	@mkdir -p $(@D)
	$(COMPONENTIZE_PY) -q -d plugins/rate-limit-py/wit -w rate-limit componentize -p plugins/rate-limit-py app -o $@

# A contract newer than the host's (0.2.3, with `kv.keys`), made from wit/,
# and a Python plugin built against it: it must still load.
FUTURE_WIT := target/future-wit
$(PLUGIN_DIR)/test_future_py.wasm: tests/polyglot-plugins/future-py/app.py tests/polyglot-plugins/future-py/world.wit $(WIT) | $(COMPONENTIZE_PY)
	@mkdir -p $(@D) $(FUTURE_WIT)/deps/imgate-policy
	cp tests/polyglot-plugins/future-py/world.wit $(FUTURE_WIT)/
	sed -e 's/^package imgate:policy@0.2.2;/package imgate:policy@0.2.3;/' wit/types.wit > $(FUTURE_WIT)/deps/imgate-policy/types.wit
	sed -e 's/^package imgate:policy@0.2.2;/package imgate:policy@0.2.3;/' wit/plugin.wit > $(FUTURE_WIT)/deps/imgate-policy/plugin.wit
	sed -e 's/^package imgate:policy@0.2.2;/package imgate:policy@0.2.3;/' \
	    -e 's/^interface kv {/interface kv {\n    keys: func() -> list<string>;/' wit/host.wit > $(FUTURE_WIT)/deps/imgate-policy/host.wit
	$(COMPONENTIZE_PY) -q -d $(FUTURE_WIT) -w later componentize -p tests/polyglot-plugins/future-py app -o $@

$(PLUGIN_DIR)/test_hostile_py.wasm: tests/polyglot-plugins/hostile-py/app.py $(WIT) | $(COMPONENTIZE_PY)
	@mkdir -p $(@D)
	$(COMPONENTIZE_PY) -q -d wit -w policy componentize -p tests/polyglot-plugins/hostile-py app -o $@

$(PLUGIN_DIR)/keyword_block_js.wasm: plugins/keyword-block-js/keyword-block.js plugins/keyword-block-js/wit/world.wit $(WIT) | $(COMPONENTIZE_JS)
	@mkdir -p $(@D)
	$(COMPONENTIZE_JS) $< --wit plugins/keyword-block-js/wit -n keyword-block $(JS_FLAGS) -o $@

# The guides' worked example in Python and JavaScript (the Rust one is the
# SDK's example `link_guard`).
$(PLUGIN_DIR)/link_guard_py.wasm: sdk/python/examples/link_guard/app.py sdk/python/examples/link_guard/wit/world.wit $(wildcard sdk/python/imgate_sdk/*.py) $(WIT) | $(COMPONENTIZE_PY)
	@mkdir -p $(@D)
	$(COMPONENTIZE_PY) -q -d sdk/python/examples/link_guard/wit -w link-guard componentize -p sdk/python/examples/link_guard -p sdk/python app -o $@

# As in a project `imgate plugin new` makes: imgate-sdk copied into node_modules.
JS_EXAMPLE := sdk/js/examples/link-guard
$(JS_EXAMPLE)/node_modules/imgate-sdk/index.js: sdk/js/imgate-sdk/index.js sdk/js/imgate-sdk/index.d.ts sdk/js/imgate-sdk/package.json
	@mkdir -p $(@D)
	cp sdk/js/imgate-sdk/*.js sdk/js/imgate-sdk/*.d.ts sdk/js/imgate-sdk/package.json $(@D)/

$(PLUGIN_DIR)/link_guard_js.wasm: $(JS_EXAMPLE)/link-guard.js $(JS_EXAMPLE)/wit/world.wit $(JS_EXAMPLE)/node_modules/imgate-sdk/index.js $(WIT) | $(COMPONENTIZE_JS)
	@mkdir -p $(@D)
	$(COMPONENTIZE_JS) $< --wit $(JS_EXAMPLE)/wit -n link-guard $(JS_FLAGS) -o $@

$(PLUGIN_DIR)/test_hostile_js.wasm: tests/polyglot-plugins/hostile-js/hostile.js $(WIT) | $(COMPONENTIZE_JS)
	@mkdir -p $(@D)
	$(COMPONENTIZE_JS) $< --wit wit -n policy $(JS_FLAGS) -o $@

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

## Heap allocations per relayed IRC message (a counting allocator).
bench-allocs: plugins
	$(CARGO) bench -p imgate --bench relay_allocs

## Idle TLS sessions in front of Prosody and ngircd: imgate KiB per session,
## sessions held (SESSIONS=n, default 5,000), a clean exchange meanwhile.
bench-sessions: deps build
	$(CARGO) bench -p imgate-tests --bench sessions

## Bridged messages against direct ones (XMPP<->IRC): added p50/p99 latency and msg/s.
bench-bridge: deps plugins build
	$(CARGO) bench -p imgate-tests --bench bridge

## Matrix through imgate against straight to Synapse: msg/s, send and sync-delivery p50/p99.
bench-matrix: deps plugins build
	$(CARGO) bench -p imgate-tests --bench matrix_proxy

## keyword-block in Rust, Python and JavaScript: size, compile, cached load, instantiation, per event, memory.
bench-languages: plugins
	$(CARGO) bench -p imgate --bench languages

## The store on SQLite and PostgreSQL side by side: durable appends/s (one per
## commit, group commit from one and two gateways), search and verify on 1M records.
bench-store: deps
	$(CARGO) bench -p imgate-tests --bench store

## The console's search page over 1,000,000 records, over HTTP (not in CI).
bench-console: build
	$(CARGO) bench -p imgate-tests --bench console

## Refresh docs/console/*.png from the browser test.
screenshots: deps plugins build
	IMGATE_SCREENSHOTS=$(CURDIR)/docs/console $(CARGO) test --release -p imgate-tests --test console

## Coverage-guided fuzzing (libFuzzer, stable toolchain), not run in CI:
## each target for FUZZ_SECONDS (default 600). `make test` runs every
## target as a 30 s smoke over its corpus instead.
FUZZ_SECONDS ?= 600
fuzz:
	./scripts/fuzz.sh all $(FUZZ_SECONDS)

clean-cache:
	rm -rf target/imgate-cache
