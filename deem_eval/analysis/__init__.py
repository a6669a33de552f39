"""What runs mean side by side: scored runs as arrays, paired significance tests and bootstrap intervals,
robustness (accuracy against corruption severity) and its figures. Imports `core`, `scoring` and `run`."""
