# Every target creates or reuses .venv, so a fresh machine with Python 3.11 needs nothing else.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# torch comes from the machine's local CPU wheel; a bare "torch" would pull a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0

.PHONY: demo test lint bench-features default-model model-perth model-wb model-v9 model-fisher model-v8 model-v7 model-v6 model-v5 model-v4 model-v3 model-v2 model-v1 clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Core install (torch-free): what `make demo` needs.
$(VENV)/.core: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

# Development install: training extras (torch first, from the local wheel) and test tools.
$(VENV)/.dev: $(VENV)/.core
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[train,server,dev]"
	touch $@

demo: $(VENV)/.core
	$(BIN)/voxguard --version
	$(BIN)/voxguard info examples/*.flac
	$(BIN)/voxguard scan examples/
	$(BIN)/voxguard scan --watermark examples/marked_perth_librispeech_1688-142285-0002.flac

# One BLAS thread: the tests compare a local scan with Dask workers' (one thread each) exactly,
# and a matrix product's last bits depend on the thread count.
test: $(VENV)/.dev
	$(BIN)/ruff check src tests
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -q

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

bench-features: $(VENV)/.dev
	$(BIN)/voxguard bench features

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build src/*.egg-info

# Retrain the shipped default voxguard-v9 (make default-model) on the DEV corpus (needs ../shared or
# CORPUS=path/to/manifest.csv): a routed model (docs/robustness.md, "Routed models", "voxguard-v8"
# and "voxguard-v9"): voxguard-v3's two SVMs for clean, telephone and other audio, a Fisher-vector
# SVM for clean and other audio, a codec expert and three babble experts (two leave the frames
# near the clip's noise floor out, and one of those is trained on its own draw of babble copies at
# 5-15 dB SNR, policy only-babble-low), mixed per segment by a router that tells which degradation
# a segment has suffered (it also reads 0-7 kHz log filterbank energies; its posteriors are the
# mean of a logistic regression's and boosted trees'). Writes voxguard-v9.onnx (the mixing graph),
# its experts voxguard-v9.{main,main-split,fisher,codec,babble-floor,babble-split,babble-low}.onnx
# and its router voxguard-v9.router.onnx; the SVM experts are then stored with float16 support
# vectors (voxguard export --half: half the bytes, scores within about 2e-3); the Fisher expert
# comes with its two-stage form (voxguard.models.fisher_stages). 15 MB, under the 20 MB a shipped
# default may take. About 100 min on 2 cores.
CORPUS ?= ../shared/corpus/manifest.csv
# Training runs with one torch and BLAS thread: the Fisher-vector models' scores move with thread
# counts (up to 6e-4 in decision values for 1 against 2 threads, enough to flip a clip of a small
# LOFO family; docs/results.md, "A wide-band companion"), so only equal counts rerun bit for bit.
# The companion's rerun with one thread (and one feature worker) took 1,088 s, its first run 1,081 s.
MODEL_TARGETS := default-model model-perth model-wb model-v9 model-fisher model-v8 model-v7 model-v6 model-v5 \
	model-v4 model-v3 model-v2 model-v1
$(MODEL_TARGETS): export OMP_NUM_THREADS = 1
$(MODEL_TARGETS): export OPENBLAS_NUM_THREADS = 1
$(MODEL_TARGETS): export MKL_NUM_THREADS = 1
# The SVM experts of routed-v6 to routed-v8 (voxguard-v7, v8 and v9), stored with float16 support vectors
# (the Fisher-vector expert of routed-v8 has no float16 step).
ROUTED_EXPERTS := main main-split codec babble-floor babble-split babble-low
# $(call routed_model,RECIPE,NAME): train a routed recipe into the zoo as NAME, then store the
# support vectors of its SVM experts in float16.
define routed_model
	$(BIN)/voxguard train $(CORPUS) --model $(1) --out src/voxguard/models/zoo/$(2).onnx \
		--name $(2) --report reports/$(2)
	for e in $(ROUTED_EXPERTS); do \
		$(BIN)/voxguard export src/voxguard/models/zoo/$(2).$$e.onnx --half || exit 1; done
endef
# voxguard-v9 (sixteenth session; the default since the seventeenth): routed-v8 = routed-v7 plus a
# Fisher-vector expert (lfcc47h-flatness7k-gated-fisher-svm, 1.7 MB, no float16 step) beside the
# two main experts for clean and "other" audio (not telephone). Since the seventeenth session
# `voxguard train` also writes the expert's two-stage form (voxguard-v9.fisher.head.onnx and the
# GMM in its card), which scans encode each frame once instead of twice.
default-model model-v9: $(VENV)/.dev
	$(call routed_model,routed-v8,voxguard-v9)

# The Perth watermark decoder (voxguard scan --watermark): exported from the resemble-perth wheel
# (PyPI, MIT) with float16 weights; needs torch to read the checkpoint. docs/watermark.md.
model-perth: $(VENV)/.dev
	$(BIN)/python scripts/export_perth.py

# voxguard-wb (nineteenth session): the default model's wide-band companion (docs/results.md,
# "A wide-band companion"). The 8-9.8 kHz views at 22.05 kHz, trained on DEV's wide-band clips only;
# the scanner mixes it in for recordings that have that band. Its mix with voxguard-v9 is fitted on
# both models' grouped out-of-fold scores under WB_CONDITIONS (robustness runs; v9's takes about an
# hour and is kept in MAIN_SCORES between runs).
WB_CONDITIONS ?= clean,mp3-64k,opus-32k,babble-10dB,babble-20dB,white-10dB,reverb-0.3s
MAIN_SCORES ?= reports/robustness-v9/scores.csv
model-wb: $(VENV)/.dev
	test -f $(MAIN_SCORES) || $(BIN)/voxguard robustness --corpus $(CORPUS) --model voxguard-v9 \
		--conditions $(WB_CONDITIONS) --out $(dir $(MAIN_SCORES)) --scores-out $(MAIN_SCORES)
	$(BIN)/python scripts/train_companion.py --corpus $(CORPUS) --main voxguard-v9 \
		--main-scores $(MAIN_SCORES) --out src/voxguard/models/zoo/voxguard-wb.onnx
	$(BIN)/voxguard robustness --corpus $(CORPUS) --wide-band-only --model src/voxguard/models/zoo/voxguard-wb.onnx \
		--conditions $(WB_CONDITIONS) --out reports/robustness-wb --scores-out reports/robustness-wb/scores.csv
	$(BIN)/python scripts/train_companion.py --fit-only --corpus $(CORPUS) --main voxguard-v9 \
		--main-scores $(MAIN_SCORES) --companion-scores reports/robustness-wb/scores.csv \
		--out src/voxguard/models/zoo/voxguard-wb.onnx --report reports/voxguard-wb-mix

# voxguard-v8 (the default in the fourteenth to sixteenth sessions; still in the zoo): v9 without
# the Fisher-vector expert, its six experts and router byte for byte (10-dB babble 1.97x the clean
# EER, v9 2.06x; higher EER under 7 of the 8 conditions of that report, level under G.711 mu-law).
# Without a frame-model member, the service keeps its scans' segment vectors for voxguard retrain.
# About 80 min.
model-v8: $(VENV)/.dev
	$(call routed_model,routed-v7,voxguard-v8)

# voxguard-fisher (fifteenth session; in the zoo, not the default): one Fisher-vector SVM
# (lfcc47h-flatness7k-gated-fisher-svm, chain*2), 1.7 MB; the best DEV leave-one-family-out of the
# shipped models (docs/results.md, "Fisher-vector pooling"), without v9's condition experts.
# About 25 min on 2 cores.
model-fisher: $(VENV)/.dev
	$(BIN)/voxguard train $(CORPUS) --model lfcc47h-flatness7k-gated-fisher-svm --augment-policy 'chain*2' \
		--out src/voxguard/models/zoo/voxguard-fisher.onnx --name voxguard-fisher --report reports/voxguard-fisher

# voxguard-v7 (the default in the thirteenth session; not in the zoo since its six experts are
# v8's, byte for byte): the same experts with a logistic router (10-dB babble 2.16x the clean EER).
model-v7: $(VENV)/.dev
	$(call routed_model,routed-v6,voxguard-v7)

# voxguard-v6 (the default in the twelfth session; not in the zoo since its five experts and its
# router are v7's, byte for byte before the float16 storage): two babble experts.
model-v6: $(VENV)/.dev
	$(BIN)/voxguard train $(CORPUS) --model routed-v5 --out src/voxguard/models/zoo/voxguard-v6.onnx \
		--name voxguard-v6 --report reports/voxguard-v6

# voxguard-v5 (eleventh session; not in the zoo): the same experts with v4's router (the experts' view only).
model-v5: $(VENV)/.dev
	$(BIN)/voxguard train $(CORPUS) --model routed-v4 --out src/voxguard/models/zoo/voxguard-v5.onnx \
		--name voxguard-v5 --report reports/voxguard-v5

# voxguard-v4, the default before v6 (in the zoo): the same but for its babble experts (v2's view, and the
# split view on two babble copies instead of four) and its router (the experts' view only).
model-v4: $(VENV)/.dev
	$(BIN)/voxguard train $(CORPUS) --model routed-v3 --out src/voxguard/models/zoo/voxguard-v4.onnx \
		--name voxguard-v4 --report reports/voxguard-v4

# voxguard-v3, the default before v4: voxguard-v2's SVM fused with the SVM that pools the louder
# and quieter frames apart. Writes voxguard-v3.onnx and its members voxguard-v3.svm.onnx and
# voxguard-v3.svm2.onnx.
model-v3: $(VENV)/.dev
	$(BIN)/voxguard train $(CORPUS) --model lfcc47h-flatness7k-gated-svm+lfcc47h-flatness7k-split-svm \
		--augment-policy 'chain*2' --out src/voxguard/models/zoo/voxguard-v3.onnx --name voxguard-v3 \
		--report reports/voxguard-v3

# voxguard-v2, the default before v3 (one SVM; kept in the zoo, docs/robustness.md "before").
model-v2: $(VENV)/.dev
	$(BIN)/voxguard train $(CORPUS) --model lfcc47h-flatness7k-gated-svm --augment-policy 'chain*2' \
		--out src/voxguard/models/zoo/voxguard-v2.onnx --name voxguard-v2 --report reports/voxguard-v2

# The default before v2, kept in the zoo for comparison (not invariant to sample rate or silence).
model-v1: $(VENV)/.dev
	$(BIN)/voxguard train $(CORPUS) --out src/voxguard/models/zoo/voxguard-v1.onnx \
		--name voxguard-v1 --report reports/voxguard-v1
