"""Running an adapter over a split: the runner (batching, prefetch, resume, data-parallel ranks) and the run
directory it writes (manifest, sample log, locks, metrics per parser). Imports `core` and `scoring`."""
