"""model_adapters/deem is split by job and imports go one way: model <- training <- micro, model <- adapter."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "model_adapters" / "deem"
FORBIDDEN = {"model": {"training", "micro", "adapter"}, "training": {"micro", "adapter"},
             "adapter.py": {"training", "micro"}}


def _deem_imports(path: Path) -> set[str]:
    """The deem subpackage / module (first part under deem/) every import in `path` names, lazy ones included."""
    package = path.relative_to(ROOT).parent.parts
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[:len(package) - (node.level - 1)]) if node.level > 1 else list(package)
                parts = base + (node.module.split(".") if node.module else [])
                names = [parts] if node.module else [base + [a.name] for a in node.names]
            elif node.module and node.module.startswith("deem_eval.model_adapters.deem."):
                names = [node.module.split(".")[3:]]
            else:
                continue
            out |= {n[0] for n in names if n}
        elif isinstance(node, ast.Import):
            out |= {a.name.split(".")[3] for a in node.names if a.name.startswith("deem_eval.model_adapters.deem.")}
    return out


def test_imports_go_one_way():
    bad = []
    for top, forbidden in FORBIDDEN.items():
        files = [ROOT / top] if top.endswith(".py") else sorted((ROOT / top).rglob("*.py"))
        assert files and all(f.is_file() for f in files), top
        for f in files:
            hit = _deem_imports(f) & forbidden
            if hit:
                bad.append(f"{f.relative_to(ROOT)} imports {sorted(hit)}")
    assert not bad, bad


def test_the_stage_configs_and_shipped_weights_are_where_the_code_looks():
    from deem_eval.model_adapters.deem.model.checkpoint import WEIGHTS_DIR
    from deem_eval.model_adapters.deem.training.stages import CONFIG_DIR

    assert {p.name for p in CONFIG_DIR.glob("*.toml")} == {"pretrain.toml", "sft.toml"}
    assert WEIGHTS_DIR.resolve() == ROOT.resolve() / "weights"
    assert {p.name for p in WEIGHTS_DIR.iterdir()} >= {"deem-micro", "deem-micro-nocsr", "micro-clip"}
