# condgan — every target does its own setup on a fresh machine.
#   make demo   train the default model on Fashion-MNIST (~9 min on 2 CPU cores), write a class grid
#   make test   the layers (lint-imports, pyproject.toml) and the test suite (installs Debian's chromium +
#               chromium-driver for the browser test when root)
#   make bench  side-by-side benchmarks: condgan vs the classic recipes, translation vs L1 only, two stages vs
#               one generator and vs no stages, the similarity recipes and "more like this one", time to quality,
#               G's class-term forms, quality levers, the 64 px model search and a small folder before/after, training speed settings (hours; memory: benchmarks/memory.py, docs/benchmarks.md)

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Pinned here (not in pyproject, which declares ranges) because these wheels are
# on this machine's disk; override e.g. TORCH_SPEC="torch torchvision" elsewhere.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
DEMO_MINUTES ?= 9
BENCH_MINUTES ?= 10
TWO_STAGE_MINUTES ?= 20
# pytest worker processes (pytest-xdist): one per core; each test file stays on one worker (its fixtures are
# built once). TEST_WORKERS=0 runs the suite in this process, one test after another.
TEST_WORKERS ?= auto

.PHONY: demo test bench data browser setup clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet $(TORCH_SPEC)
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

data:
	@scripts/ensure-data.sh

browser:
	@scripts/ensure-browser.sh

demo: $(STAMP) data
	$(PY) -m condgan train --budget-minutes $(DEMO_MINUTES) --out runs/demo --set train.checkpoint_minutes=2
	$(PY) -m condgan sample runs/demo --label sandal,sneaker,ankle-boot --n 8 --out runs/demo/shoes.png
	@echo
	@echo "demo finished:"
	@echo "  class grid (one row per class): runs/demo/samples/latest.png"
	@echo "  shoe / sandal / boot grid     : runs/demo/shoes.png"
	@echo "  loss plot                     : runs/demo/loss.png"
	@echo "  logs                          : runs/demo/metrics.jsonl, TensorBoard: $(VENV)/bin/tensorboard --logdir runs/demo/tb"
	@echo "  more samples                  : $(PY) -m condgan sample runs/demo --label bag --n 16 --out bags.png"
	@echo "  prove it obeys its labels     : $(PY) -m condgan eval runs/demo   (about 3 minutes; report in runs/demo/eval/report.md)"

test: $(STAMP) data browser
	$(VENV)/bin/lint-imports                 # the layers declared in pyproject.toml
	$(PY) scripts/cycles.py                  # no import cycle, even through imports inside functions
	$(PY) scripts/sizes.py                   # no module over 400 lines, no function over 60
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

bench: $(STAMP) data
	$(PY) benchmarks/compare.py --minutes $(BENCH_MINUTES) --out bench-results
	$(PY) benchmarks/eval_speed.py --out bench-results/eval_speed.json
	$(PY) benchmarks/kill_resume.py --kills 20 --out bench-results/kill_resume.json
	$(PY) benchmarks/translate.py --minutes $(BENCH_MINUTES) --out bench-results/translate
	$(PY) benchmarks/small_folder.py --minutes 20 --out bench-results/small-folder
	$(PY) benchmarks/bad_input_census.py --out bench-results/bad_input_census.json
	$(PY) benchmarks/serve_load.py --serve bench-results/condgan-default --out bench-results/serve_load.json
	$(PY) benchmarks/time_to_quality.py --minutes $(BENCH_MINUTES) --out bench-results/time_to_quality
	$(PY) benchmarks/speed.py --out bench-results/speed.json
	$(PY) benchmarks/two_stage.py --minutes $(TWO_STAGE_MINUTES) --out bench-results/two-stage
	$(PY) benchmarks/similarity.py --minutes 10 --versions before,after --parallel --exemplar-minutes 15 --out bench-results/similarity
	$(PY) benchmarks/class_loss.py --minutes $(BENCH_MINUTES) --out bench-results/class-loss
	$(PY) benchmarks/quality.py --minutes 3 --out bench-results/quality
	$(PY) benchmarks/folder_model.py --minutes 4 --out bench-results/folder-model

clean:
	rm -rf $(VENV) runs bench-results
