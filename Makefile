# Two commands do all set-up on a fresh machine:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH_VERSION := 2.13.0
STAMP := $(VENV)/.installed

.PHONY: setup demo test clean-venv

# torch is chosen deliberately, never left to a dependency (plain `pip install torch` on a CUDA-less box pulls a
# multi-GB CUDA build):  TORCH=auto (default) | cpu | cuda | local
#   local: a wheel already on this machine (pip's find-links, e.g. a pre-seeded CPU wheel), nothing downloaded
#   cpu:   PyTorch's CPU index (about 200 MB)        cuda: PyPI's default build (CUDA; for a GPU box)
#   auto:  local if such a wheel is there, else cuda when `nvidia-smi` works, else cpu
TORCH ?= auto
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
PIP := $(PY) -m pip install -q

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@set -e; choice=$(TORCH); \
	if [ "$$choice" = auto ]; then \
	    if $(PIP) --no-index --no-deps torch==$(TORCH_VERSION) 2>/dev/null; then choice=local; \
	    elif nvidia-smi >/dev/null 2>&1; then choice=cuda; else choice=cpu; fi; fi; \
	echo "torch $(TORCH_VERSION): $$choice build (make TORCH=cpu|cuda|local to choose)"; \
	case $$choice in \
	    local) $(PIP) --no-index --no-deps torch==$(TORCH_VERSION) && $(PIP) torch==$(TORCH_VERSION) ;; \
	    cpu)   $(PIP) torch==$(TORCH_VERSION) --index-url $(TORCH_CPU_INDEX) ;; \
	    cuda)  $(PIP) torch==$(TORCH_VERSION) ;; \
	    *)     echo "TORCH must be auto, cpu, cuda or local, not $$choice" >&2; exit 2 ;; \
	esac
	$(PIP) -e '.[test]'
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

# lint and type check first (seconds, then about two minutes cold), then the suite
test: $(STAMP)
	$(VENV)/bin/ruff check .
	OMP_NUM_THREADS=1 $(VENV)/bin/mypy
	$(PY) -m pytest -q

clean-venv:
	rm -rf $(VENV)
