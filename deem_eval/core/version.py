"""The package version, recorded in every split, run manifest and checkpoint (kept here, at the bottom
layer, so that recording it never imports the package root)."""

__version__ = "0.1.0"
