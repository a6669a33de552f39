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

# The main job: DEEM (tiny preset, random weights, yes/no scored from logits) on the bundled mini
# RobustVQA, two baselines for reference, then the leaderboard.
demo: $(STAMP)
	$(VENV)/bin/deem-eval --model deem -M preset=deem-tiny -M scoring=logits --bench robustvqa
	$(VENV)/bin/deem-eval --model random --bench robustvqa
	$(VENV)/bin/deem-eval --model always-yes --bench robustvqa
	$(VENV)/bin/deem-eval leaderboard

test: $(STAMP)
	$(PY) -m pytest -q

clean-venv:
	rm -rf $(VENV)
