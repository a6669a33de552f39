"""Every registered plug-in honours its contract: it loads, it has the typed parts the CLI relies on,
and the model-free adapters run through the pipeline."""

import dataclasses

import pytest

from deem_eval.cli import main
from deem_eval.core.registry import BENCHMARKS, BUILDERS, MODELS, PARSERS
from deem_eval.run.runner import RunOptions, run
from deem_eval.scoring.parsing import Parser


@pytest.mark.parametrize("name", MODELS.names())
def test_model_entry_loads_with_typed_config(name):
    cls = MODELS.get(name)
    assert cls.name == name
    assert dataclasses.is_dataclass(cls.Config)
    assert isinstance(cls.needs_images, bool)
    assert callable(getattr(cls, "generate", None))


@pytest.mark.parametrize("name", BENCHMARKS.names())
def test_benchmark_entry_loads_with_typed_config(name):
    cls = BENCHMARKS.get(name)
    assert cls.name == name
    assert dataclasses.is_dataclass(cls.Config)
    assert cls.description
    assert callable(getattr(cls(cls.Config()), "load", None))


@pytest.mark.parametrize("name", PARSERS.names())
def test_parser_entry_is_a_named_total_parser(name):
    parser = PARSERS.get(name)
    assert isinstance(parser, Parser) and parser.name == name
    for text in ("Yes.", "No.", "", "Not sure.", "There is no dog."):
        assert parser.parse(text) in {"yes", "no", "unknown"}
    assert parser.parse("Yes") == "yes"
    assert parser.parse("No") == "no"


@pytest.mark.parametrize("name", BUILDERS.names())
def test_builder_entry_has_help(name, capsys):
    builder = BUILDERS.get(name)()
    assert builder.name == name and builder.help
    with pytest.raises(SystemExit) as exit_:
        main(["build", name, "--help"])
    assert exit_.value.code == 0
    assert f"usage: deem-eval build {name}" in capsys.readouterr().out


@pytest.mark.parametrize("name", [n for n in MODELS.names() if n in ("always-yes", "always-no", "random")])
def test_model_free_adapters_run_through_the_pipeline(name, tiny_split, tmp_path):
    from deem_eval.api import build_adapter
    from deem_eval.scoring.parsing import STRICT

    adapter = build_adapter(name, {})
    result = run(adapter, tiny_split, STRICT, RunOptions(out=tmp_path, progress=False))
    assert result.metrics["complete"] and result.metrics["n_answered"] == len(tiny_split.samples)
