"""deem-eval: perception and hallucination benchmarks from the DEEM paper (RobustVQA, POPE).

Reading order, which is also the direction of every import (a layer imports only the ones above it here):

1. `core`      contracts: splits, adapter and benchmark protocols, registries, options, safe I/O
2. `scoring`   parsers, metrics, scoring answers against a split, foreign answers files
3. `run`       the runner and the run directories it writes
4. `analysis`  scored runs, paired tests and bootstrap intervals, robustness
5. `views`     leaderboard and HTML report
6. `cli`       the `deem-eval` command line (each command a small class, loaded on demand)

Benchmarks (`benchmarks/`) and model adapters (`model_adapters/`) build on `core` and reach the rest only
through the registries.
"""

from deem_eval.core.version import __version__

__all__ = ["Evaluation", "__version__", "evaluate"]


def __getattr__(name: str) -> object:
    """`deem_eval.evaluate` / `deem_eval.Evaluation`, imported on first use so `import deem_eval` stays light."""
    if name in ("evaluate", "Evaluation"):
        from deem_eval import api

        return getattr(api, name)
    raise AttributeError(f"module 'deem_eval' has no attribute {name!r}")
