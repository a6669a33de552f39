"""Named plug-ins (models, benchmarks, parsers, builders, corruptions), filled from entry points.

Entry points are listed without importing anything, so `deem-eval list` stays fast; an entry is imported
only when it is used. Third-party packages add their own entries under the same groups in their
pyproject.toml. Tests and scripts can also `register()` objects at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from deem_eval.core.errors import DeemEvalError, did_you_mean


@dataclass
class Registry:
    group: str   # entry-point group, e.g. "deem_eval.models"
    kind: str    # what one entry is called in messages, e.g. "model"

    def __post_init__(self) -> None:
        self._extra: dict[str, Any] = {}
        self._loaded: dict[str, Any] = {}

    def _targets(self) -> dict[str, str]:
        targets = {ep.name: ep.value for ep in entry_points(group=self.group)}
        targets.update({name: "<registered at run time>" for name in self._extra})
        return targets

    def names(self) -> list[str]:
        return sorted(self._targets())

    def target(self, name: str) -> str:
        """The "module:attribute" an entry points to, without importing it."""
        targets = self._targets()
        if name not in targets:
            raise did_you_mean(name, targets, self.kind)
        return targets[name]

    def get(self, name: str) -> Any:
        if name in self._extra:
            return self._extra[name]
        if name not in self._loaded:
            target = self.target(name)
            module_name, _, attr = target.partition(":")
            try:
                obj: Any = import_module(module_name)
                for part in filter(None, attr.split(".")):
                    obj = getattr(obj, part)
            except (ImportError, AttributeError) as exc:
                raise DeemEvalError(f"{self.kind} {name!r} is registered as {target!r} but could not be "
                                    f"loaded: {exc}") from exc
            self._loaded[name] = obj
        return self._loaded[name]

    def register(self, name: str, obj: Any) -> None:
        self._extra[name] = obj

    def unregister(self, name: str) -> None:
        self._extra.pop(name, None)


MODELS = Registry("deem_eval.models", "model")
BENCHMARKS = Registry("deem_eval.benchmarks", "benchmark")
PARSERS = Registry("deem_eval.parsers", "parser")
BUILDERS = Registry("deem_eval.builders", "builder")
CORRUPTIONS = Registry("deem_eval.corruptions", "corruption")
COMMAND_PLUGINS = Registry("deem_eval.commands", "command")   # subcommands other packages add (DEEM training)
ALL = {"models": MODELS, "benchmarks": BENCHMARKS, "parsers": PARSERS, "builders": BUILDERS,
       "corruptions": CORRUPTIONS}
