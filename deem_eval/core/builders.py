"""The builder protocol behind `deem-eval build NAME ...` (one subcommand per registered builder).

A builder is a class with `name`, `help` (one line), `add_arguments(parser)` and `run(args) -> int`.
Builders register under the entry-point group `deem_eval.builders`; the CLI adds a subparser for each.
"""

from __future__ import annotations

import argparse
from typing import Protocol


class Builder(Protocol):
    name: str
    help: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...
