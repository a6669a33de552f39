"""The run directory: manifest, per-sample answers (appended and flushed per batch), failures, metrics.

    <run dir>/manifest.json    who answered what: model + config, split + fingerprint, seeds, versions, times
    <run dir>/samples.jsonl    one record per answered sample, never two for one id
    <run dir>/prompts.jsonl    each distinct rendered prompt once, keyed by the sha256 its samples name
    <run dir>/failures.jsonl   per-sample failures (unreadable image, adapter exception); retried on resume
    <run dir>/metrics.json     written by the scorer, with the manifest's parser (the run's own numbers)
    <run dir>/metrics.<parser>.json   a rescoring with another parser (`deem-eval score RUN --parser P`)
    <run dir>/lock             flock held by the one process writing the run (its pid, host, start time)

One writer per run directory: the runner holds an exclusive `flock` on `lock` for the whole run (data-parallel
ranks other than 0 lock `lock.rank{R}` instead, so ranks never wait on each other). The kernel drops the lock
when its holder exits, even on kill -9, so a crashed run never needs unlocking by hand; the file's content
only names the holder in the error another process gets.

A crash (even kill -9) can only leave a partial *last* line in samples.jsonl; `RunDir.open` drops it, so
resuming re-answers that sample and nothing is lost or written twice. In data-parallel runs each rank
appends to `samples.rank{R}.jsonl`; rank 0 merges them (sorted by id) when all ranks are done. Each start of
the ranks is one attempt: rank 0 writes `attempt.json` (a fresh id plus its lock's holder), and rank R's
`rank{R}.done` names the attempt it finished in, so a marker left by an interrupted attempt is never mistaken
for a finished rank of this one.

A sample line also carries its `question`, its `image` (the path as stored in the split) and, where the adapter
can say what it rendered, `prompt_sha256`; the prompt's text is in prompts.jsonl, written before the samples
that name it. Readers ignore keys they do not know and default the ones an older run lacks.
"""

from __future__ import annotations

import errno
import json
import operator
import os
import socket
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from deem_eval.core.atomic import atomic_write_text, writing
from deem_eval.core.errors import DeemEvalError
from deem_eval.core.jsonio import json_lines, parse_json, read_utf8
from deem_eval.scoring.score import Answer, DuplicateAnswersWarning

if TYPE_CHECKING:
    from typing_extensions import Self

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock, runs are not locked
    fcntl = None  # type: ignore[assignment]

MANIFEST_FILE = "manifest.json"
SAMPLES_FILE = "samples.jsonl"
PROMPTS_FILE = "prompts.jsonl"
FAILURES_FILE = "failures.jsonl"
METRICS_FILE = "metrics.json"
LOCK_FILE = "lock"
ATTEMPT_FILE = "attempt.json"


class DuplicateRecordsWarning(DuplicateAnswersWarning):
    """samples.jsonl holds an id twice (written by two processes before runs were locked)."""


class RunLockedError(DeemEvalError):
    """Another process holds the lock of a run directory."""

    def __init__(self, message: str, holder: LockHolder):
        super().__init__(message)
        self.holder = holder


@dataclass(frozen=True)
class LockHolder:
    """Who holds a run's lock, as written into the lock file by the holder."""

    pid: int | None
    host: str
    since: str

    def describe(self) -> str:
        if self.pid is None:
            return "a process that is just starting (its pid is not written yet)"
        return f"pid {self.pid} on host {self.host} since {self.since}"


class RunLock:
    """An exclusive, non-blocking `flock` on one file, held until `release` (or the holder's death).

    The file is never deleted while a run may still use it: unlinking a lock file lets a newcomer lock a fresh
    inode while the old holder still writes. flock works across hosts only where the file system supports it
    (local disks; NFSv4 emulates it with POSIX locks).
    """

    def __init__(self, path: Path, fd: int | None):
        self.path, self._fd = path, fd

    @classmethod
    def try_acquire(cls, path: Path, *, blocking: bool = False) -> RunLock | LockHolder:
        """The lock, or who holds it (`blocking`: wait for it instead)."""
        if fcntl is None:
            return cls(path, None)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            return holder
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP):
                raise
            warnings.warn(f"{path}: this file system does not support locks ({exc.strerror}); the run is not "
                          "protected against a second writer", RuntimeWarning, stacklevel=2)
            return cls(path, None)
        except BaseException:
            os.close(fd)
            raise
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": _utc_now()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        return cls(path, fd)

    @classmethod
    def acquire(cls, path: Path) -> RunLock:
        """The lock, or RunLockedError naming the holder and what to do."""
        got = cls.try_acquire(path)
        if isinstance(got, LockHolder):
            raise RunLockedError(
                f"{path.parent}: this run directory is in use: its lock ({path.name}) is held by {got.describe()}. "
                "Wait for that run to finish, or stop it (rerunning the same command then resumes it), "
                "or choose another --run-dir.", got)
        return got

    @classmethod
    def wait(cls, path: Path) -> RunLock:
        """The lock, waiting as long as it takes: for short critical sections only."""
        got = cls.try_acquire(path, blocking=True)
        assert isinstance(got, RunLock)
        return got

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)   # no stale holder for a reader racing the next one to its write
            os.close(self._fd)          # closing the last descriptor drops the flock
            self._fd = None


@contextmanager
def directory_lock(directory: Path, fallback_name: str) -> Iterator[None]:
    """A blocking flock on `directory` itself, for short critical sections: nothing is added to it. Where the
    file system cannot flock a directory (NFS locks need a file open for writing) a hidden lock file,
    `fallback_name`, inside it is locked instead."""
    if fcntl is None:
        yield
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError:
        os.close(fd)
        lock = RunLock.wait(directory / fallback_name)
        try:
            yield
        finally:
            lock.release()
        return
    try:
        yield
    finally:
        os.close(fd)


def _read_holder(fd: int) -> LockHolder:
    return _parse_holder(os.pread(fd, 4096, 0))


def _parse_holder(raw: bytes) -> LockHolder:
    try:
        obj = json.loads(raw or b"null")
        return LockHolder(int(obj["pid"]), str(obj.get("host", "?")), str(obj.get("since", "?")))
    except (ValueError, TypeError, KeyError):   # empty (holder between lock and write) or damaged
        return LockHolder(None, "?", "?")


def lock_holder_info(path: Path) -> LockHolder:
    """What a lock file says about its holder, read without locking it: taking even a shared flock on rank 0's
    lock could make rank 0's own non-blocking acquire fail. Truncated on release, so a clean exit names nobody;
    only a holder killed outright leaves its name behind."""
    try:
        return _parse_holder(path.read_bytes()[:4096])
    except OSError:
        return LockHolder(None, "?", "?")


def _utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class SampleRecord:
    """One answered sample as stored in samples.jsonl."""

    id: str
    output: str | None          # the model's raw text (None when only logits were computed)
    parsed: str                 # yes | no | unknown, by the run's parser (rescoring may use another)
    gold: str                   # yes | no
    yes_prob: float | None = None
    latency_s: float = 0.0      # wall time of the batch divided by its size (manifest: latency_is_batch_mean)
    question: str | None = None         # None only in runs made before sample lines carried it
    image: str | None = None            # the split's image path as stored there (relative to its image root)
    prompt_sha256: str | None = None    # sha256 of the exact text the model saw (prompts.jsonl); None: unknown

    def to_line(self, latency_s: float | None = None) -> str:
        obj: dict[str, Any] = {"id": self.id, "output": self.output, "parsed": self.parsed, "gold": self.gold,
                               "yes_prob": self.yes_prob,
                               "latency_s": self.latency_s if latency_s is None else latency_s}
        for key in _LOG_FIELDS:   # left out when unknown, so a record without them writes the old line
            value = getattr(self, key)
            if value is not None:
                obj[key] = value
        return _ENCODE(obj) + "\n"

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> SampleRecord:
        try:
            return cls(**obj)
        except TypeError:   # extra keys written by a newer version: keep the known ones
            return cls(**{k: v for k, v in obj.items() if k in _RECORD_FIELDS})


_RECORD_FIELDS = frozenset(f.name for f in fields(SampleRecord))
_LOG_FIELDS = ("question", "image", "prompt_sha256")


_READ_CHUNK = 1 << 20        # bytes of samples.jsonl parsed at once: a few MB of records in memory
_T = TypeVar("_T")


def _convert_lines(path: Path, lineno: int, lines: list[bytes], convert: Callable[[Any], _T]) -> list[_T]:
    """`convert` of the records on `lines` (the file's lines after `lineno`; blank ones skipped)."""
    try:   # one parse for the whole chunk (per-line json.loads was most of the cost of reading)
        objs = json.loads(b"[" + b",".join(lines) + b"]")
        numbers: Sequence[int] = range(lineno + 1, lineno + 1 + len(lines))
    except (json.JSONDecodeError, UnicodeDecodeError):
        numbers = [lineno + k for k, raw in enumerate(lines, start=1) if raw.strip()]
        objs = [_object_of(path, n, lines[n - lineno - 1]) for n in numbers]
    try:
        return list(map(convert, objs))
    except (KeyError, TypeError, AttributeError):           # a record without a field, or not an object
        for number, obj in zip(numbers, objs):
            try:
                convert(obj)
            except (KeyError, TypeError, AttributeError):
                raise DeemEvalError(f"{path}:{number}: malformed record; the run directory is damaged") from None
        raise


def _object_of(path: Path, lineno: int, raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise DeemEvalError(f"{path}:{lineno}: malformed record; the run directory is damaged") from None


_ID_OF = operator.itemgetter("id")


def _answer_of(obj: Mapping[str, Any]) -> Answer:
    return Answer(obj["id"], obj["output"], obj.get("yes_prob"))


def prompt_line(sha256: str, prompt: str) -> str:
    """One prompts.jsonl line: the hash its samples name and the text it is the hash of."""
    return _ENCODE({"sha256": sha256, "prompt": prompt}) + "\n"
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


@dataclass(frozen=True)
class Failure:
    id: str
    stage: str                  # "image" or "model"
    error: str

    def to_line(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":")) + "\n"


@dataclass
class RunManifest:
    run_key: str                        # hash of what makes two runs "the same command"
    model: str
    model_label: str
    adapter_config: dict[str, Any]
    split_name: str
    split_fingerprint: str
    split_dir: str
    benchmark: str
    seed: int
    limit: int | None
    batch_size: int
    scoring: str
    parser: str
    deem_eval_version: str
    git_sha: str | None
    library_versions: dict[str, str]
    device: str
    started_utc: str
    finished_utc: str | None = None
    world_size: int = 1
    n_selected: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    content_fingerprint: str | None = None   # digest of the adapter's loaded files (answers, weights); in run_key
    # every sample's latency_s is its batch's wall time / batch size (runs before this field: the same)
    latency_is_batch_mean: bool = True

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], where: str) -> RunManifest:
        if not isinstance(obj, Mapping):
            raise DeemEvalError(f"{where}: a run manifest must be a JSON object, got {type(obj).__name__}; "
                                "the run is damaged: delete the run directory and run it again")
        names = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in obj.items() if k in names})
        except TypeError as exc:
            raise DeemEvalError(f"{where}: malformed run manifest ({exc})") from None


class RunDir:
    def __init__(self, path: Path, manifest: RunManifest):
        self.path = path
        self.manifest = manifest

    # ---- creation and opening -------------------------------------------------------------------
    @classmethod
    def create(cls, path: Path, manifest: RunManifest, *, exclusive: bool = False) -> RunDir:
        """A run with a new manifest; `exclusive` raises FileExistsError if `path` already holds one (the
        manifest appears whole or not at all, so two creators cannot both win)."""
        path.mkdir(parents=True, exist_ok=True)
        run = cls(path, manifest)
        if exclusive:
            _publish_new(path / MANIFEST_FILE, json.dumps(manifest.to_json(), indent=2, ensure_ascii=False) + "\n")
        else:
            run.write_manifest()
        return run

    @classmethod
    def open(cls, path: Path) -> RunDir:
        manifest_path = path / MANIFEST_FILE
        if not manifest_path.is_file():
            raise DeemEvalError(f"{path}: not a run directory (no {MANIFEST_FILE})")
        obj = parse_json(read_utf8(manifest_path), manifest_path)
        return cls(path, RunManifest.from_json(obj, str(manifest_path)))

    def write_manifest(self) -> None:
        _atomic_write_json(self.path / MANIFEST_FILE, self.manifest.to_json())

    # ---- samples ---------------------------------------------------------------------------------
    def samples_path(self, rank: int | None = None) -> Path:
        return self.path / (SAMPLES_FILE if rank is None else f"samples.rank{rank}.jsonl")

    def read_records(self, rank: int | None = None, *, repair: bool = True) -> list[SampleRecord]:
        """All complete records, one per id; a torn last line (crash mid-write: no final newline) is cut off
        when `repair`, so the sample is simply answered again. An id written twice (two writers, before runs
        were locked) keeps its first record, with a DuplicateRecordsWarning, so it is never counted twice."""
        records = self._read_as(SampleRecord.from_json, rank, repair=repair)
        return self._first_per_id(records, [r.id for r in records], rank)

    def answer_chunks(self, rank: int | None = None, *, repair: bool = True) -> Iterator[list[Answer]]:
        """What scoring needs of each record (id, output, P(yes)), a chunk of the file at a time, so the other
        fields (question, image, prompt hash, ...) of a million-answer run are never all in memory at once.
        Duplicates are left to the scorer (`ScoreAccumulator` keeps the first answer of an id, as here)."""
        return self._chunks_as(_answer_of, rank, repair=repair)

    def answered_ids(self, rank: int | None = None, *, repair: bool = True) -> set[str]:
        """The ids with a complete record."""
        return set(self._read_as(_ID_OF, rank, repair=repair))

    def _first_per_id(self, items: list[_T], ids: list[str], rank: int | None) -> list[_T]:
        if len(set(ids)) == len(ids):
            return items
        first: dict[str, _T] = {}
        for i, item in zip(ids, items):
            first.setdefault(i, item)
        unique = list(first.values())
        warnings.warn(f"{self.samples_path(rank)}: {len(items) - len(unique)} duplicate record(s) ignored "
                      "(the first answer of each id is kept)", DuplicateRecordsWarning, stacklevel=3)
        return unique

    def _read_as(self, convert: Callable[[Any], _T], rank: int | None, *, repair: bool) -> list[_T]:
        return [item for chunk in self._chunks_as(convert, rank, repair=repair) for item in chunk]

    def _chunks_as(self, convert: Callable[[Any], _T], rank: int | None, *, repair: bool) -> Iterator[list[_T]]:
        """`convert` of every complete record of samples.jsonl, a list per chunk of about _READ_CHUNK bytes; a
        record `convert` rejects (a field missing, not an object) names its file and line. What follows the
        last newline is a torn write: cut off when `repair`, once the chunks are all read."""
        path = self.samples_path(rank)
        if not path.exists():
            return
        lineno, tail = 0, b""
        with open(path, "rb") as handle:
            while block := handle.read(_READ_CHUNK):
                data = tail + block
                complete = data.rfind(b"\n") + 1
                tail = data[complete:]
                if complete:
                    lines = data[:complete - 1].split(b"\n")
                    yield _convert_lines(path, lineno, lines, convert)
                    lineno += len(lines)
            size = handle.tell()
        if tail and repair:
            with open(path, "r+b") as handle:
                handle.truncate(size - len(tail))

    def append_records(self, records: Iterable[SampleRecord], rank: int | None = None) -> None:
        _append_lines(self.samples_path(rank), (r.to_line() for r in records))

    def appender(self, rank: int | None = None) -> Appender:
        """Keeps samples/failures files open for a whole run; each write is flushed to the OS at once. Prompts
        already on disk (this file's, and the merged file's for a rank) are not written again."""
        known = set(self.read_prompts())
        if rank is not None:
            known |= set(self.read_prompts(rank))
        return Appender(self.samples_path(rank), self.failures_path(rank), self.prompts_path(rank), known)

    # ---- prompts ---------------------------------------------------------------------------------
    def prompts_path(self, rank: int | None = None) -> Path:
        return self.path / (PROMPTS_FILE if rank is None else f"prompts.rank{rank}.jsonl")

    def read_prompts(self, rank: int | None = None, *, repair: bool = True) -> dict[str, str]:
        """sha256 -> rendered prompt; empty for runs made before prompts were logged. A torn last line is cut
        off when `repair` (its prompt is written again with the next sample that uses it); others are skipped."""
        path = self.prompts_path(rank)
        if not path.exists():
            return {}
        data = path.read_bytes()
        complete = data.rfind(b"\n") + 1
        out: dict[str, str] = {}
        for raw in data[:complete].splitlines():
            try:
                obj = json.loads(raw)
                out.setdefault(str(obj["sha256"]), str(obj["prompt"]))
            except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
                continue
        if complete != len(data) and repair:
            with open(path, "r+b") as handle:
                handle.truncate(complete)
        return out

    def write_prompts(self, prompts: Mapping[str, str]) -> None:
        """The whole prompts.jsonl at once (the data-parallel merge), sorted by hash; nothing when empty."""
        if prompts or self.prompts_path().exists():
            atomic_write_text(self.prompts_path(), "".join(prompt_line(h, prompts[h]) for h in sorted(prompts)),
                              fsync=True)

    def write_records(self, records: Iterable[SampleRecord]) -> None:
        atomic_write_text(self.samples_path(), "".join(r.to_line() for r in records), fsync=True)

    # ---- failures --------------------------------------------------------------------------------
    def failures_path(self, rank: int | None = None) -> Path:
        return self.path / (FAILURES_FILE if rank is None else f"failures.rank{rank}.jsonl")

    def append_failures(self, failures: Iterable[Failure], rank: int | None = None) -> None:
        _append_lines(self.failures_path(rank), (f.to_line() for f in failures))

    def read_failures(self, rank: int | None = None) -> list[Failure]:
        """Failures of samples that have not been answered since (the latest error per id)."""
        path = self.failures_path(rank)
        if not path.exists():
            return []
        latest: dict[str, Failure] = {}
        for raw in json_lines(path.read_text(encoding="utf-8")):
            try:
                obj = json.loads(raw)
                latest[obj["id"]] = Failure(obj["id"], obj.get("stage", "?"), obj.get("error", ""))
            except (json.JSONDecodeError, KeyError, TypeError):
                continue  # a torn line from a crash: the sample is simply retried
        if latest:
            for ids in self._chunks_as(_ID_OF, rank, repair=False):   # never all the answered ids at once
                for i in ids:
                    latest.pop(i, None)
        return [f for _, f in sorted(latest.items())]

    def write_failures(self, failures: Iterable[Failure]) -> None:
        atomic_write_text(self.failures_path(), "".join(f.to_line() for f in failures), fsync=True)

    # ---- metrics ---------------------------------------------------------------------------------
    def marker_path(self, rank: int) -> Path:
        return self.path / f"rank{rank}.done"

    def write_marker(self, rank: int, attempt: str) -> None:
        """Rank `rank` has answered all its ids in `attempt`: written whole, so rank 0 never reads half of it."""
        atomic_write_text(self.marker_path(rank), json.dumps({"attempt": attempt}) + "\n", fsync=True)

    def read_marker(self, rank: int) -> str | None:
        """The attempt rank `rank` last finished in; None when it has none (or an old-format "done" marker)."""
        try:
            obj = json.loads(self.marker_path(rank).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return obj.get("attempt") if isinstance(obj, dict) and isinstance(obj.get("attempt"), str) else None

    def write_attempt(self, attempt: str, holder: LockHolder) -> None:
        """Rank 0 names this attempt and itself (its lock's holder), so other ranks can tell it from a stale one."""
        obj = {"attempt": attempt, "pid": holder.pid, "host": holder.host, "since": holder.since}
        _atomic_write_json(self.path / ATTEMPT_FILE, obj)

    def read_attempt(self) -> tuple[str, LockHolder] | None:
        """(attempt id, rank 0 that wrote it), or None while there is none (or it is damaged)."""
        try:
            obj = json.loads((self.path / ATTEMPT_FILE).read_text(encoding="utf-8"))
            return str(obj["attempt"]), LockHolder(obj["pid"], str(obj["host"]), str(obj["since"]))
        except (OSError, ValueError, TypeError, KeyError):
            return None

    def metrics_path(self, parser: str | None = None) -> Path:
        """metrics.json for the run's own parser, metrics.<parser>.json for any other: a rescoring never
        overwrites the numbers the run was made with."""
        if parser is None or parser == self.manifest.parser:
            return self.path / METRICS_FILE
        if not parser or any(c in parser for c in "/\\") or parser.startswith("."):
            raise DeemEvalError(f"{parser!r}: not a usable parser name for a metrics file")
        return self.path / f"metrics.{parser}.json"

    def write_metrics(self, metrics: Mapping[str, Any]) -> Path:
        """Written where its "parser" field says (metrics.json when that is the manifest's); the path."""
        path = self.metrics_path(metrics.get("parser"))
        _atomic_write_json(path, metrics)
        return path

    def read_metrics(self, parser: str | None = None) -> dict[str, Any] | None:
        path = self.metrics_path(parser)
        if not path.exists():
            return None
        return json.loads(path.read_text(encoding="utf-8"))


class Appender:
    """Appends records and failures, flushing after every batch.

    A flushed write survives the process being killed (it is in the kernel's page cache), which is what
    resuming needs; the files are fsynced once, on close, rather than per batch (fsync per batch cost
    ~300 µs/sample in the runner-overhead benchmark).
    """

    def __init__(self, samples: Path, failures: Path, prompts: Path | None = None, known: Iterable[str] = ()):
        self._samples_path, self._failures_path, self._prompts_path = samples, failures, prompts
        self._known = set(known)   # prompt hashes already on disk
        with writing(samples):
            self._samples = open(samples, "a", encoding="utf-8", newline="\n")  # noqa: SIM115 - held until close()
        self._failures: TextIO | None = None
        self._prompts: TextIO | None = None

    def write(self, records: Iterable[SampleRecord], failures: Iterable[Failure] = (),
              latency_s: float | None = None, prompts: Mapping[str, str] | None = None) -> None:
        """`prompts` (sha256 -> text) are written, the new ones only, before the samples that name them."""
        self._write_prompts(prompts or {})
        text = "".join(r.to_line(latency_s) for r in records)
        if text:
            with writing(self._samples_path):
                self._samples.write(text)
                self._samples.flush()
        failed = "".join(f.to_line() for f in failures)
        if failed:
            with writing(self._failures_path):
                if self._failures is None:
                    self._failures = open(self._failures_path, "a", encoding="utf-8", newline="\n")  # noqa: SIM115 - held until close()
                self._failures.write(failed)
                self._failures.flush()

    def _write_prompts(self, prompts: Mapping[str, str]) -> None:
        new = {h: t for h, t in prompts.items() if h not in self._known}
        if not new or self._prompts_path is None:
            return
        with writing(self._prompts_path):
            if self._prompts is None:
                self._prompts = open(self._prompts_path, "a", encoding="utf-8", newline="\n")  # noqa: SIM115 - held until close()
            self._prompts.write("".join(prompt_line(h, t) for h, t in new.items()))
            self._prompts.flush()
        self._known |= new.keys()

    def close(self) -> None:
        handles: list[tuple[TextIO | None, Path | None]] = [
            (self._prompts, self._prompts_path), (self._samples, self._samples_path),
            (self._failures, self._failures_path)]
        for handle, path in handles:
            # a prompts handle exists only when its path does
            if handle is not None and path is not None and not handle.closed:
                try:
                    with writing(path):
                        handle.flush()
                        os.fsync(handle.fileno())
                finally:
                    _close_quietly(handle)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _close_quietly(handle: Any) -> None:
    """Close after a failed flush: the buffered bytes cannot be written, and a second error would hide the first."""
    try:
        handle.close()
    except OSError:
        pass


def _append_lines(path: Path, lines: Iterable[str]) -> None:
    text = "".join(lines)
    if not text:
        return
    with writing(path), open(path, "a", encoding="utf-8", newline="\n") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _publish_new(path: Path, text: str) -> None:
    """Write `text` to `path` only if `path` does not exist: written beside it, then hard-linked into place
    (link fails if the target exists; a reader never sees a partial file)."""
    tmp = path.with_name(f".{path.name}.new{os.getpid()}-{threading.get_ident()}")   # per thread too
    try:
        with writing(path):
            tmp.write_text(text, encoding="utf-8", newline="\n")
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise
        except OSError:   # no hard links on this file system: exclusive create (a reader may see it partial)
            with open(path, "x", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
    finally:
        tmp.unlink(missing_ok=True)


def _atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n", fsync=True)
