"""The contracts every part agrees on: the split store (samples, fingerprints, verification), the adapter and
benchmark protocols, the registries and their options, and the small safe-I/O helpers (atomic writes, JSON
lines, image decoding, errors). Nothing here imports another deem_eval subpackage."""
