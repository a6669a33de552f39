"""The strict parser over many texts at once: the fast path's tests as array operations.

`strict_parse_batch(texts)` equals `[strict_parse(t) for t in texts]`. Scoring a million distinct answers is
dominated by the per-text Python steps of the fast path (lower-casing, splitting into letter runs, two set
tests), so for ASCII texts those steps run vectorised over the joined texts, a chunk at a time:

- the letter runs of every text are found at once, and each run whose bytes equal a word of the yes/no
  stop sets (`strict_rule._YES_STOPS`, `strict_rule._NO_STOPS`) marks its text (runs are compared by their bytes,
  read as two 64-bit words: exact, no hashing);
- a text led by "yes"/"no" plus a separator (or just that), with no stop run of its lead and, after "yes",
  no "n't", gets its verdict here: what `strict_rule._fast_verdict` gives;
- every other text takes the per-text path (`strict_rule._ascii_rule` after the quick table), unchanged.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from deem_eval.scoring.strict_rule import (
    _FAST_SEPARATORS,
    _NO_STOPS,
    _QUICK,
    _SPACE_NON_LETTERS_KEEP_NUL,
    _YES_STOPS,
    NO,
    UNKNOWN,
    YES,
    Verdict,
    _ascii_rule,
    strict_parse,
)

CHUNK_TEXTS = 65_536        # texts per vectorised step: bounds the temporary arrays to a few MB
VECTOR_MIN_TEXTS = 256      # below this, the ~30 array operations cost more than parsing text by text
_KEY_BYTES = 16             # runs are keyed by their first 16 bytes; every stop word is shorter
_STOPS = sorted(_YES_STOPS | _NO_STOPS)
assert max(map(len, _STOPS)) <= _KEY_BYTES
_SEPARATOR = np.array([chr(c) in _FAST_SEPARATORS for c in range(256)])
_CODES = np.array([YES, NO, UNKNOWN], dtype=object)
_NT = re.compile("n't")


def strict_parse_batch(texts: list[str]) -> list[Verdict]:
    """`[strict_parse(t) for t in texts]`, the fast path vectorised for ASCII texts without NUL (any
    others one at a time)."""
    if len(texts) < VECTOR_MIN_TEXTS:
        return [strict_parse(t) for t in texts]
    out: list[Verdict] = []
    for first in range(0, len(texts), CHUNK_TEXTS):
        chunk = texts[first:first + CHUNK_TEXTS]
        joined = "\0".join(chunk)
        if joined.isascii() and joined.count("\0") == len(chunk) - 1:
            out += _ascii_chunk(chunk, joined)
        else:
            out += _mixed_chunk(chunk)
    return out


def _mixed_chunk(texts: list[str]) -> list[Verdict]:
    """Texts in other scripts, or holding a NUL, one at a time; the rest vectorised."""
    plain = [i for i, t in enumerate(texts) if t.isascii() and "\0" not in t]
    plain_texts = [texts[i] for i in plain]
    verdicts = dict(zip(plain, _ascii_chunk(plain_texts, "\0".join(plain_texts))))
    return [verdicts[i] if i in verdicts else strict_parse(t) for i, t in enumerate(texts)]


def _ascii_chunk(texts: list[str], joined: str) -> list[Verdict]:
    """The verdicts of ASCII texts without NUL (`joined`: them joined by NUL)."""
    if not texts:
        return []
    low = joined.lower()                # ASCII: lower() is per character, and no curly quotes to replace
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    ends = np.cumsum(lengths + 1) - 1                  # index of each text's end (its NUL, or the end)
    starts = ends - lengths
    raw = low.encode("ascii")
    buf = np.frombuffer(raw + bytes(_KEY_BYTES + 8), dtype=np.uint8)     # zero padding for the reads below

    yes_stop, no_stop = _stop_runs(buf, len(raw), starts)
    # A text led by "yes"/"no" has no leading whitespace, and trailing whitespace changes neither its
    # letter runs nor the character after the lead (or leaves none), so the unstripped text decides.
    first = [buf[starts + k] for k in range(4)]      # an empty text's first is its NUL (or the padding)
    yes_lead = ((first[0] == ord("y")) & (first[1] == ord("e")) & (first[2] == ord("s"))
                & ((lengths == 3) | _SEPARATOR[first[3]]))
    no_lead = (first[0] == ord("n")) & (first[1] == ord("o")) & ((lengths == 2) | _SEPARATOR[first[2]])
    has_nt = np.zeros(len(texts), dtype=bool)
    nt_at = [m.start() for m in _NT.finditer(low)]
    if nt_at:
        has_nt[np.searchsorted(starts, nt_at, side="right") - 1] = True
    fast_yes = yes_lead & ~yes_stop & ~has_nt
    fast_no = no_lead & ~no_stop
    codes = np.where(fast_yes, 0, np.where(fast_no, 1, 2))
    out: list[Verdict] = _CODES[codes].tolist()
    slow = np.flatnonzero(~(fast_yes | fast_no)).tolist()
    if slow:
        letters = raw.translate(_SPACE_NON_LETTERS_KEEP_NUL)
        quick_get = _QUICK.get
        for i, s, e in zip(slow, starts[slow].tolist(), ends[slow].tolist()):
            t = low[s:e].strip()
            verdict = quick_get(t)
            out[i] = verdict if verdict is not None else _ascii_rule(t, letters[s:e].split(), led=False)
    return out


def _stop_runs(buf: np.ndarray, size: int, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per text: whether one of its letter runs is a word of _YES_STOPS, of _NO_STOPS."""
    n = len(starts)
    yes_stop, no_stop = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    letter = np.zeros(size + 2, dtype=np.int8)
    letter[1:-1] = (buf[:size] >= ord("a")) & (buf[:size] <= ord("z"))
    edges = np.diff(letter)
    run_starts = np.flatnonzero(edges == 1)
    run_lengths = np.flatnonzero(edges == -1) - run_starts
    fits = run_lengths <= _KEY_BYTES
    run_starts, run_lengths = run_starts[fits], run_lengths[fits]
    low, high = _run_bytes(buf, run_starts, run_lengths)
    stops = _stop_table()
    at = np.minimum(np.searchsorted(stops.low, low), len(stops.low) - 1)
    hit = np.flatnonzero((stops.low[at] == low) & (stops.high[at] == high))   # the run's bytes are a stop word's
    texts = np.searchsorted(starts, run_starts[hit], side="right") - 1
    word = at[hit]
    yes_stop[texts[stops.yes[word]]] = True
    no_stop[texts[stops.no[word]]] = True
    return yes_stop, no_stop


def _run_bytes(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each run's bytes (at most _KEY_BYTES) as two little-endian 64-bit words, zero after its end: equal
    pairs, equal runs (a run holds no zero byte)."""
    words = np.ndarray((len(buf) - 7,), dtype="<u8", buffer=buf, strides=(1,))    # 8 bytes at every offset
    low = words[starts] & _mask(np.minimum(lengths, 8))
    high = words[starts + 8] & _mask(np.clip(lengths - 8, 0, 8))
    return low, high


_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)   # the first k bytes of a word


def _mask(n_bytes: np.ndarray) -> np.ndarray:
    """Little-endian masks keeping the first `n_bytes` (0..8) bytes of a 64-bit word."""
    return _MASKS[n_bytes]


class _StopTable(NamedTuple):
    low: np.ndarray         # the stop words' first 8 bytes, sorted (unique: no two share them)
    high: np.ndarray        # their next 8 bytes
    yes: np.ndarray         # in _YES_STOPS
    no: np.ndarray          # in _NO_STOPS


@lru_cache(maxsize=1)
def _stop_table() -> _StopTable:
    lengths = np.array([len(w) for w in _STOPS], dtype=np.int64)
    starts = np.concatenate(([0], np.cumsum(lengths + 1)[:-1]))
    buf = np.frombuffer(b" ".join(_STOPS) + bytes(_KEY_BYTES + 8), dtype=np.uint8)
    low, high = _run_bytes(buf, starts, lengths)
    order = np.argsort(low, kind="stable")
    if len(np.unique(low)) != len(low):
        raise AssertionError("two stop words share their first 8 bytes: key them on more")
    return _StopTable(low[order], high[order], np.array([_STOPS[i] in _YES_STOPS for i in order]),
                      np.array([_STOPS[i] in _NO_STOPS for i in order]))
