"""From answers to numbers: answer parsers (strict and the upstream-compatible ones), the metrics, scoring a
set of answers against a split, and reading answers files made by other tools. Imports only `core`."""
