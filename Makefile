# Two commands do all set-up on a fresh machine:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH_VERSION := 2.13.0
STAMP := $(VENV)/.installed

.PHONY: setup demo test clean-venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The tested torch first, so nothing later pulls a multi-GB CUDA build.
	$(PY) -m pip install -q torch==$(TORCH_VERSION)
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

# The main job: the bundled DEEM-micro (trained by `deem-eval train-micro`, shipped in the package) on the
# mini RobustVQA and the bundled POPE, beside its no-CSR ablation (DEEM-micro*) and two baselines; then the
# leaderboard with paired significance tests against DEEM-micro, and the HTML report.
DE := $(VENV)/bin/deem-eval
demo: $(STAMP)
	$(DE) --model deem --bench robustvqa
	$(DE) --model deem -M preset=deem-micro-nocsr --bench robustvqa
	$(DE) --model random --bench robustvqa
	$(DE) --model always-yes --bench robustvqa
	$(DE) --model deem --bench pope
	$(DE) --model deem -M preset=deem-micro-nocsr --bench pope
	$(DE) --model random --bench pope
	$(DE) --model always-yes --bench pope
	$(DE) leaderboard --paired deem:deem-micro
	$(DE) report --out results/report --no-progress
	@echo "HTML report: $(CURDIR)/results/report/index.html"

test: $(STAMP)
	$(PY) -m pytest -q

clean-venv:
	rm -rf $(VENV)
