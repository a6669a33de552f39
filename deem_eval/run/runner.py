"""Run one model adapter over one split: batched, resumable by id, failures recorded per sample.

Restarting the same command (same model + config, split fingerprint, seed, limit, and the same content of
the files the adapter loaded: its `content_fingerprint()`, see adapters.content_fingerprint) finds the unfinished run
in the output directory and answers only the ids that are not in its samples.jsonl yet, in the batches an
uninterrupted run would have used (plan_batches / resume_batches: with the same --batch-size and world size a
resumed run's answers equal an uninterrupted run's, batch-dependent numerics included, except for the samples of a
batch that was answered only in part, which are retried batched on their own). Under torchrun /
accelerate (RANK and WORLD_SIZE set) every rank answers the ids with index % WORLD_SIZE == RANK into its
own file, and rank 0 merges them, sorted by id, when all ranks are done. Rank 0 names each attempt
(`attempt.json`); the other ranks wait for rank 0's attempt before answering and mark their end with its id, so
a `rank{R}.done` left by an interrupted attempt never lets rank 0 merge (and delete) a file a rank still writes.
Rank 0 gives up on a rank whose files show no progress for `rank_timeout_s` (default 10 minutes, or
$DEEM_EVAL_RANK_TIMEOUT_S), naming it and leaving every answer on disk for the resume.

One writer per run directory (see rundir.RunLock): the run holds an exclusive lock on `<run>/lock` from
opening to the final metrics; data-parallel ranks other than 0 hold `<run>/lock.rank{R}` instead, so rank 0
waiting for the others to finish never waits on a lock they need. Looking for (or creating) a run in --out
is serialised by a short lock on the --out directory itself, so two identical commands started together cannot
both pick the same run or both create one: the second finds the first's run locked and stops with an error
naming the holder (it does not wait: a duplicate of a running job is almost always a mistake). An unfinished
run that is locked is never joined; an unlocked one (its writer died) is resumed.

Input pipeline: by default (workers=0) one background thread decodes the next batch's images while the model
answers. With `workers=N` (`--workers N`) and an adapter that has a `preparer()` (hf, deem), N DataLoader worker
processes decode *and prepare* the planned batches in order (processor call, resize, tokenize); the model gets
`answer(batch, prepared=...)`, and the answers are exactly those of workers=0.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from deem_eval.core.adapters import ModelAdapter, Request
from deem_eval.core.errors import DeemEvalError, WriteError
from deem_eval.core.images import load_rgb
from deem_eval.core.options import seconds_setting
from deem_eval.core.splits import Sample, Split
from deem_eval.core.version import __version__
from deem_eval.run.rundir import (
    ATTEMPT_FILE,
    LOCK_FILE,
    MANIFEST_FILE,
    Failure,
    LockHolder,
    RunDir,
    RunLock,
    RunLockedError,
    RunManifest,
    SampleRecord,
    directory_lock,
    lock_holder_info,
)
from deem_eval.scoring.parsing import Parser
from deem_eval.scoring.score import Answer, score_document, verdicts

LIBRARIES = ("torch", "transformers", "diffusers", "datasets", "numpy", "pillow", "accelerate")
RANK_TIMEOUT_S = 600.0                       # no progress in a missing rank's files for this long: give up
RANK_TIMEOUT_ENV = "DEEM_EVAL_RANK_TIMEOUT_S"
OUT_LOCK_FILE = ".deem-eval.lock"   # in --out, only where the directory itself cannot be locked


@dataclass(frozen=True)
class RunOptions:
    batch_size: int = 8
    limit: int | None = None
    seed: int = 0
    out: Path = Path("results/runs")
    run_dir: Path | None = None      # an explicit run directory (created, or resumed if it matches)
    progress: bool = True
    rank: int = 0
    world_size: int = 1
    rank_timeout_s: float | None = None   # None: $DEEM_EVAL_RANK_TIMEOUT_S, else RANK_TIMEOUT_S
    force: bool = False              # answer again even when an identical complete run exists in `out`
    workers: int = 0                 # processes that decode and prepare batches (0: one thread decodes images)


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    metrics: dict[str, Any] | None   # None on ranks other than 0 in data-parallel runs
    resumed_from: int                # samples already answered when this invocation started


def distributed_env() -> tuple[int, int]:
    """(rank, world size) of this process in a data-parallel run, from the launcher's environment.

    torchrun and `accelerate launch --multi_gpu` set RANK / WORLD_SIZE; `accelerate launch --cpu
    --mpirun_hostfile FILE` runs mpirun, whose processes carry PMI_RANK / PMI_SIZE (Intel MPI, MPICH),
    OMPI_COMM_WORLD_RANK / _SIZE (Open MPI) or MV2_COMM_WORLD_RANK / _SIZE (MVAPICH): the names accelerate
    itself reads, tried in that order, one family at a time. accelerate's simple launcher (`--cpu` without
    mpirun, or no multi-process option) starts ONE process with only ACCELERATE_* variables (and MASTER_ADDR /
    MASTER_PORT when --num_processes > 1): that process answers every sample, and a warning says so.
    A rank outside [0, world size) or a value that is not an integer is an error naming the variable.
    """
    found = _launcher_rank_vars()
    if found is None:
        env = os.environ
        if any(k.startswith("ACCELERATE_") for k in env) and ("MASTER_ADDR" in env or "MASTER_PORT" in env):
            print("deem-eval: warning: started by `accelerate launch` for several processes, but no rank variable "
                  "is set (RANK / WORLD_SIZE, PMI_*, OMPI_COMM_WORLD_*, MV2_COMM_WORLD_*): accelerate's simple "
                  "launcher (e.g. `--cpu --num_processes N` without --mpirun_hostfile) starts only this one "
                  "process, so it answers every sample alone. For N processes use `torchrun --nproc_per_node N "
                  "-m deem_eval ...`, `accelerate launch --multi_gpu --num_processes N -m deem_eval ...`, or "
                  "`accelerate launch --cpu --mpirun_hostfile FILE --num_processes N -m deem_eval ...`.",
                  file=sys.stderr)
        return 0, 1
    (rank_var, rank_text), (world_var, world_text) = found
    values = []
    for var, text, default in ((rank_var, rank_text, 0), (world_var, world_text, 1)):
        if text is None or not text.strip():
            values.append(default)
            continue
        try:
            values.append(int(text.strip()))
        except ValueError:
            raise DeemEvalError(f"{var}={text!r}: not an integer; the launcher sets it to this process's "
                                f"{'rank' if var == rank_var else 'world size'}") from None
    rank, world = values
    if world < 1 or not 0 <= rank < world:
        raise DeemEvalError(f"{rank_var}={rank}, {world_var}={world}: the rank must be in [0, world size) and the "
                            "world size at least 1; set both (torchrun and accelerate do) or neither")
    return rank, world


def _launcher_rank_vars() -> tuple[tuple[str, str | None], tuple[str, str | None]] | None:
    """((rank variable, value), (world size variable, value)) of the first launcher family with either set."""
    for rank_var, world_var in (("RANK", "WORLD_SIZE"), ("PMI_RANK", "PMI_SIZE"),
                                ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),
                                ("MV2_COMM_WORLD_RANK", "MV2_COMM_WORLD_SIZE")):
        if rank_var in os.environ or world_var in os.environ:
            return (rank_var, os.environ.get(rank_var)), (world_var, os.environ.get(world_var))
    return None


def select_samples(split: Split, limit: int | None) -> list[Sample]:
    """The whole split, or `limit` samples chosen by hash of id: a stable, well-mixed subset."""
    if limit is None or limit >= len(split.samples):
        return list(split.samples)
    if limit <= 0:
        raise DeemEvalError(f"--limit must be positive, got {limit}")
    ranked = sorted(split.samples, key=lambda s: hashlib.sha256(s.id.encode()).digest())
    return sorted(ranked[:limit], key=lambda s: s.id)


def run_key(model: str, adapter_config: dict[str, Any], split: Split, options: RunOptions,
            content: str | None = None) -> str:
    """Hash of what makes two runs the same; `content` (the adapter's content fingerprint) is left out when
    None so keys of adapters without one are unchanged."""
    identity = {"model": model, "config": adapter_config, "split": split.fingerprint,
                "seed": options.seed, "limit": options.limit}
    if content is not None:
        identity["content"] = content
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]


def effective_limit(split: Split, limit: int | None) -> int | None:
    """None when `limit` covers the whole split: such a run answers every sample, so it is the same run as
    one without --limit (same run key, not marked as a subset)."""
    return None if limit is not None and limit >= len(split.samples) else limit


def run(adapter: ModelAdapter, split: Split, parser: Parser, options: RunOptions) -> RunResult:
    mode = adapter.scoring_mode()
    options = dataclasses.replace(options, limit=effective_limit(split, options.limit))
    selected = select_samples(split, options.limit)
    content = adapter.content_fingerprint()
    key = run_key(adapter.name, adapter.config_dict(), split, options, content)
    if not options.force and options.run_dir is None and options.world_size == 1:
        reused = _find_complete(options.out, key, parser)
        if reused is not None:
            print(f"note: reusing the identical complete run {reused.run_dir} (same model, options, files, split, "
                  f"seed and limit); pass --force to answer again", file=sys.stderr)
            return reused
    with _run_writes(options.run_dir or options.out):
        run_dir, lock = _open_or_create(adapter, split, parser, options, key, mode, len(selected), content)
        try:
            _check_same_parser(run_dir, parser)
            return _run_locked(adapter, split, parser, options, mode, selected, run_dir)
        finally:
            lock.release()


@contextmanager
def _run_writes(default: Path) -> Iterator[None]:
    """Any OSError left while making the run (a file where --out's directory belongs, no space, read-only)
    becomes one message naming the path the OS named, else the run's output directory."""
    try:
        yield
    except WriteError:
        raise
    except OSError as exc:
        raise WriteError(exc.filename or default, exc) from None


def _check_same_parser(run_dir: RunDir, parser: Parser) -> None:
    """A resumed run keeps its manifest's parser: its samples' `parsed` column and metrics.json were made
    with it, and mixing two parsers in one run would make them disagree. Other parsers are for rescoring."""
    own = run_dir.manifest.parser
    if own == parser.name:
        return
    raise DeemEvalError(f"{run_dir.path}: this run is scored with parser {own!r}, not {parser.name!r}. Resume "
                        f"it with --parser {own} (or omit --parser if that is the default), then rescore with "
                        f"`deem-eval score {run_dir.path} --parser {parser.name}` (writes "
                        f"metrics.{parser.name}.json beside its metrics.json), or pass another --out for a new run.")


def _run_locked(adapter, split: Split, parser: Parser, options: RunOptions, mode: str,
                selected: list[Sample], run_dir: RunDir) -> RunResult:
    rank_file = options.rank if options.world_size > 1 else None
    done = run_dir.answered_ids()
    if rank_file is not None:
        done |= run_dir.answered_ids(rank_file)
    mine = [s for i, s in enumerate(selected) if i % options.world_size == options.rank]
    todo = [s for s in mine if s.id not in done]
    resumed_from = len(mine) - len(todo)
    if resumed_from:
        print(f"resuming {run_dir.path}: {resumed_from}/{len(mine)} samples already answered", file=sys.stderr)

    attempt = _begin_attempt(run_dir, options) if options.world_size > 1 else None
    _answer_all(adapter, split, parser, mode, mine, done, run_dir, rank_file, options, total=len(mine),
                initial=resumed_from)
    if attempt is not None:
        if options.rank != 0:
            run_dir.write_marker(options.rank, attempt)
            return RunResult(run_dir.path, None, resumed_from)
        _merge_ranks(run_dir, options.world_size, attempt, rank_timeout(options))
    metrics = finalize(run_dir, split, parser, selected)
    return RunResult(run_dir.path, metrics, resumed_from)


def finalize(run_dir: RunDir, split: Split, parser: Parser, selected: Sequence[Sample] | None = None
             ) -> dict[str, Any]:
    """Score the run's answers and write them (also used by `deem-eval score`): metrics.json with the
    manifest's parser, metrics.<parser>.json with any other, which leaves the manifest alone too."""
    metrics = score_run(run_dir, split, parser, selected)
    run_dir.write_metrics(metrics)
    own = parser.name == run_dir.manifest.parser
    if own and metrics["complete"] and run_dir.manifest.finished_utc is None:
        run_dir.manifest.finished_utc = _utc_now()
        run_dir.write_manifest()
    return metrics


def score_run(run_dir: RunDir, split: Split, parser: Parser, selected: Sequence[Sample] | None = None, *,
              repair: bool = True) -> dict[str, Any]:
    """The metrics document of the run's answers with `parser`, written nowhere (the leaderboard rescores
    read-only with this, `repair=False` leaving a torn last line in place)."""
    if selected is None:
        selected = select_samples(split, run_dir.manifest.limit)
    samples = {s.id: s for s in selected}
    failures = [f for f in run_dir.read_failures() if f.id in samples]
    metrics = score_document(samples, run_dir.answer_chunks(repair=repair), parser, n_selected=len(selected),
                             failures=failures, chunked=True, source=str(run_dir.samples_path())).to_json()
    metrics["failures"] = [{"id": f.id, "stage": f.stage, "error": f.error} for f in failures[:50]]
    metrics["run"] = {"model": run_dir.manifest.model, "model_label": run_dir.manifest.model_label,
                      "split_name": split.name, "split_fingerprint": split.fingerprint,
                      "benchmark": split.meta.benchmark}
    return metrics


# ---- answering -------------------------------------------------------------------------------------

def plan_batches(samples: Sequence[Sample], batch_size: int, length_key: Callable[[str], Any] | None = None
                 ) -> list[list[Sample]]:
    """The batches an uninterrupted run answers `samples` (this rank's share of the selection) in: fixed by the
    samples, `batch_size` and the adapter's `length_key` (longest prompts first, stable for equal lengths, so
    similar lengths share a batch: less padding), never by what an earlier attempt already answered."""
    ordered = list(samples) if length_key is None else sorted(samples, key=lambda s: -length_key(s.question))
    return [ordered[i:i + batch_size] for i in range(0, len(ordered), max(1, batch_size))]


def resume_batches(planned: Sequence[Sequence[Sample]], done: set[str] | frozenset[str]) -> list[list[Sample]]:
    """What is left of `planned` once the ids in `done` are answered, batched so a resumed run answers every
    untouched batch exactly as an uninterrupted run does: batches with no answer yet are kept whole and in
    order; the leftovers of batches answered only in part (a sample that failed, whose batch-mates were then
    answered one by one, or a torn last write) are retried first, batched on their own, so they never shift the
    boundaries of the others. (A batched model's output can depend on its batch-mates through padding and
    kernel choice, ~1e-7 in P(yes): this keeps a resumed run equal to an uninterrupted one.)"""
    retries: list[Sample] = []
    untouched: list[list[Sample]] = []
    for batch in planned:
        left = [s for s in batch if s.id not in done]
        if len(left) == len(batch):
            untouched.append(list(batch))
        else:
            retries += left
    size = max((len(b) for b in planned), default=1)
    return [retries[i:i + size] for i in range(0, len(retries), size)] + untouched


def _answer_all(adapter, split, parser, mode, mine, done, run_dir, rank_file, options, *, total, initial) -> None:
    from tqdm import tqdm

    batches = resume_batches(plan_batches(mine, options.batch_size, getattr(adapter, "length_key", None)), done)
    bar = tqdm(total=total, initial=initial, unit="q", desc=f"{adapter.label} on {split.name}",
               disable=not options.progress, dynamic_ncols=True, file=sys.stderr)
    needs_images = getattr(adapter, "needs_images", True)
    preparer = adapter.preparer() if options.workers > 0 and batches else None
    with ThreadPoolExecutor(max_workers=1) as pool, run_dir.appender(rank_file) as out:
        stream: Iterator[tuple[list, Any]]
        if preparer is not None:   # N processes decode and prepare the next batches while the model answers
            stream = _worker_prepared(batches, _Loader(split.image_root_path(), split.meta.candidates, needs_images,
                                                       preparer), options.workers)
        else:   # the pool loads the next batch's images while the model answers this one
            prepare = lambda b: (*_prepare(adapter, split, b), None)
            stream = _prefetched(batches, prepare, pool if needs_images else None)
        for batch, (requests, failures, prepared) in stream:
            started = time.perf_counter()
            prompts: dict[str, str] = {}
            records, model_failures = _call_adapter(adapter, mode, parser, requests, {s.id: s for s in batch},
                                                    prompts, prepared)
            latency = round((time.perf_counter() - started) / max(1, len(requests)), 6)
            used = {r.prompt_sha256 for r in records}   # not those of samples that failed
            out.write(records, failures + model_failures, latency, {h: t for h, t in prompts.items() if h in used})
            bar.update(len(batch))
    bar.close()


def _prefetched(batches, prepare: Callable, pool: ThreadPoolExecutor | None) -> Iterator[tuple[list, Any]]:
    if pool is None:   # nothing to load in the background (adapters that never open images)
        for batch in batches:
            yield batch, prepare(batch)
        return
    if not batches:
        return
    pending: Future = pool.submit(prepare, batches[0])
    for i, batch in enumerate(batches):
        prepared = pending.result()
        if i + 1 < len(batches):   # the next batch loads while this one is answered
            pending = pool.submit(prepare, batches[i + 1])
        yield batch, prepared


def _prepare(adapter, split: Split, batch: Sequence[Sample]) -> tuple[list[Request], list[Failure]]:
    return _load_requests(split.image_root_path(), split.meta.candidates, adapter.needs_images, batch)


def _load_requests(root: Path, candidates: tuple[str, ...], needs_images: bool, batch: Sequence[Sample]
                   ) -> tuple[list[Request], list[Failure]]:
    requests, failures = [], []
    for sample in batch:   # root: once per batch, path arithmetic is a visible share of runner overhead
        try:
            requests.append(_request(root, candidates, needs_images, sample))
        except DeemEvalError as exc:
            failures.append(Failure(sample.id, "image", str(exc)))
        except Exception as exc:  # noqa: BLE001 - one bad file must not end (or block resuming) a run
            failures.append(Failure(sample.id, "image", f"{sample.image}: {type(exc).__name__}: {exc}"))
    return requests, failures


def _image_path(root: Path, sample: Sample) -> Path:
    return Path(sample.image) if sample.image.startswith("/") else root / sample.image


def _request(root: Path, candidates: tuple[str, ...], needs_images: bool, sample: Sample) -> Request:
    path = _image_path(root, sample)
    image: Any = load_rgb(path) if needs_images else path
    subject = sample.group.get("object", sample.group.get("class"))
    return Request(sample.id, image, sample.question, None if subject is None else str(subject), candidates)


# ---- the input pipeline of --workers N -------------------------------------------------------------

@dataclass(frozen=True)
class _Loader:
    """What a worker process needs to turn planned samples into requests and prepared inputs: no adapter, no
    model (picklable, so it also works under the spawn start method)."""

    root: Path
    candidates: tuple[str, ...]
    needs_images: bool
    preparer: Callable[[Sequence[Request]], Any]

    def __call__(self, batch: Sequence[Sample]) -> tuple[list[Request], list[Failure], Any]:
        """(requests, image failures, prepared inputs or None). A batch the preparer cannot prepare (e.g. one
        image too small for the encoder) comes back unprepared, images decoded, so the main process answers it
        exactly as without workers and only the sample at fault fails. Prepared requests carry their image's
        path instead of its pixels (the prepared inputs hold those): nothing large is pickled back, and an
        adapter that re-encodes part of a batch (after out-of-memory) opens the same file again."""
        requests, failures = _load_requests(self.root, self.candidates, self.needs_images, batch)
        if not requests:
            return requests, failures, None
        try:
            prepared = self.preparer(requests)
        except Exception:  # noqa: BLE001 - answered (and failed per sample) the ordinary way instead
            return requests, failures, None
        if prepared is None:
            return requests, failures, None
        by_id = {s.id: s for s in batch}
        if self.needs_images:
            requests = [dataclasses.replace(r, image=_image_path(self.root, by_id[r.id])) for r in requests]
        return requests, failures, _Prepared(prepared)


@dataclass(frozen=True)
class _Prepared:
    """A preparer's result on its way from a worker; the DataLoader's pin thread calls `pin_memory`."""

    inputs: Any

    def pin_memory(self, *_: Any) -> _Prepared:
        from deem_eval.core.adapters import pin_memory

        return _Prepared(pin_memory(self.inputs))


class _PlannedBatches:
    """The planned batches as a map-style dataset (index -> one prepared batch), for a DataLoader."""

    def __init__(self, batches: Sequence[Sequence[Sample]], loader: _Loader) -> None:
        self.batches = [list(b) for b in batches]
        self.loader = loader

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> tuple[list[Request], list[Failure], Any]:
        return self.loader(self.batches[index])


def _one_thread(_worker_id: int) -> None:
    import torch

    torch.set_num_threads(1)   # N workers x all cores' threads would oversubscribe the machine


def _as_is(item: Any) -> Any:
    return item


def _worker_prepared(batches: Sequence[Sequence[Sample]], loader: _Loader, workers: int
                     ) -> Iterator[tuple[list, Any]]:
    """(batch, (requests, failures, prepared)) in planned order, made by `workers` processes
    (torch.utils.data.DataLoader: batch_size=None, 2 batches ahead per worker; pinned when CUDA is available)."""
    import torch
    from torch.utils.data import DataLoader

    dataset: Any = _PlannedBatches(batches, loader)   # map-style: __len__ and __getitem__ are all it needs
    data: DataLoader[Any] = DataLoader(dataset, batch_size=None, shuffle=False, num_workers=workers,
                                       collate_fn=_as_is, worker_init_fn=_one_thread, persistent_workers=True,
                                       prefetch_factor=2, pin_memory=torch.cuda.is_available())
    iterator = iter(data)
    try:
        for batch, (requests, failures, prepared) in zip(batches, iterator):
            yield list(batch), (requests, failures, None if prepared is None else prepared.inputs)
    finally:
        shutdown = getattr(iterator, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()


def _call_adapter(adapter, mode, parser, requests, samples, prompts: dict[str, str], prepared: Any = None
                  ) -> tuple[list[SampleRecord], list[Failure]]:
    """Answer a batch (with its `prepared` inputs, if any); if the batch raises, answer one by one, unprepared,
    so only the failing samples fail. The prompts the records name are added to `prompts` (sha256 -> text)."""
    if not requests:
        return [], []
    try:
        return _answer(adapter, mode, parser, requests, samples, prompts, prepared), []
    except Exception as exc:  # noqa: BLE001 - any adapter error becomes a recorded failure
        if len(requests) == 1:
            return [], [Failure(requests[0].id, "model", f"{type(exc).__name__}: {exc}")]
    records, failures = [], []
    for request in requests:
        r, f = _call_adapter(adapter, mode, parser, [request], samples, prompts)
        records += r
        failures += f
    return records, failures


def _answer(adapter: ModelAdapter, mode, parser, requests, samples, prompts: dict[str, str], prepared: Any = None
            ) -> list[SampleRecord]:
    hashes = [_prompt_hash(adapter, r, prompts) for r in requests]   # first: a prompt that fails fails the sample
    replies = adapter.answer(requests) if prepared is None else adapter.answer(requests, prepared=prepared)
    if len(replies) != len(requests):
        raise RuntimeError(f"adapter returned {len(replies)} answers for {len(requests)} requests")
    answers = [Answer(r.id, reply.text, reply.p_yes) for r, reply in zip(requests, replies)]
    parsed = verdicts(parser, answers)
    return [SampleRecord(r.id, reply.text, v, samples[r.id].answer, reply.p_yes, question=samples[r.id].question,
                         image=samples[r.id].image, prompt_sha256=h)
            for r, reply, v, h in zip(requests, replies, parsed, hashes)]


def _prompt_hash(adapter, request: Request, prompts: dict[str, str]) -> str | None:
    """sha256 of the text the model sees for `request` (recorded in `prompts`), or None if the adapter cannot say."""
    text = adapter.prompt_for(request)
    if text is None:
        return None
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    prompts[digest] = text
    return digest


# ---- run directories -------------------------------------------------------------------------------

def _open_or_create(adapter, split, parser, options, key, mode, n_selected, content=None
                    ) -> tuple[RunDir, RunLock]:
    """The run to write, with its lock held by this process (the caller releases it)."""
    new_manifest = partial(_manifest, adapter, split, parser, options, key, mode, n_selected, content)
    lock_name = _lock_name(options)
    if options.run_dir is not None:
        return _open_explicit(options.run_dir, lock_name, adapter, split, key, new_manifest, content)
    if options.world_size > 1 and options.rank != 0:
        return _wait_for_rank0_run(options.out, key, lock_name)
    options.out.mkdir(parents=True, exist_ok=True)
    with directory_lock(options.out, OUT_LOCK_FILE):
        found, busy = _find_unfinished(options.out, key, lock_name)
        if found is not None:
            return found
        if busy:
            path, holder = busy[0]
            raise RunLockedError(
                f"an identical run is already in progress in {path}: its lock is held by {holder.describe()}. "
                "Wait for it to finish, or stop it and rerun this command to resume it, or pass another --out "
                "to start a separate copy.", holder)
        name = f"{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}_{_slug(adapter.label)}_{_slug(split.name)}"
        path = _make_new_dir(options.out, name)
        lock = RunLock.acquire(path / lock_name)   # nobody else can know this directory yet
        try:
            return RunDir.create(path, new_manifest(), exclusive=True), lock
        except BaseException:
            lock.release()
            raise


def _lock_name(options: RunOptions) -> str:
    """Rank 0 (or a single process) holds the run's lock; other ranks a lock of their own, so a duplicate
    rank is refused while rank 0 never blocks the ranks it waits for."""
    return LOCK_FILE if options.world_size <= 1 or options.rank == 0 else f"{LOCK_FILE}.rank{options.rank}"


def _open_explicit(path: Path, lock_name: str, adapter, split: Split, key: str,
                   new_manifest: Callable[[], RunManifest], content: str | None = None) -> tuple[RunDir, RunLock]:
    """--run-dir: locked first, then the manifest is read or created, so two writers never both decide."""
    path.mkdir(parents=True, exist_ok=True)
    lock = RunLock.acquire(path / lock_name)
    try:
        if not (path / MANIFEST_FILE).exists():
            try:
                return RunDir.create(path, new_manifest(), exclusive=True), lock
            except FileExistsError:   # another rank of this run created it first
                pass
        run = RunDir.open(path)
        _check_same_run(run, adapter, split, key, content)
        return run, lock
    except BaseException:
        lock.release()
        raise


def _make_new_dir(out: Path, name: str) -> Path:
    """A directory nobody else has: mkdir without exist_ok, a numbered suffix on collision."""
    path, suffix = out / name, 1
    while True:
        try:
            path.mkdir()
            return path
        except FileExistsError:
            suffix += 1
            path = out / f"{name}-{suffix}"


def _check_same_run(run: RunDir, adapter, split: Split, key: str, content: str | None = None) -> None:
    m = run.manifest
    if m.run_key == key:
        return
    reasons = []
    if m.model != adapter.name or m.model_label != adapter.label:
        reasons.append(f"it holds model {m.model_label!r}, not {adapter.label!r}")
    if m.split_name != split.name or m.split_fingerprint != split.fingerprint:
        reasons.append(f"it holds split {m.split_name!r} ({m.split_fingerprint[:12]}…), not {split.name!r} "
                       f"({split.fingerprint[:12]}…)")
    if not reasons and m.content_fingerprint != content:
        reasons.append("the files the model loads (answers file or weights) changed since it was started")
    if not reasons:
        reasons.append("its model options, seed or --limit differ")
    raise DeemEvalError(f"{run.path}: refusing to write into this run directory: {'; '.join(reasons)}. "
                        "Choose another --run-dir, or omit it to create a new run.")


def _find_complete(out: Path, key: str, parser: Parser) -> RunResult | None:
    """The newest finished run of `key` in `out` scored with `parser` that answered every sample without a
    failure: running the same command again would only reproduce it."""
    if not out.is_dir():
        return None
    for manifest in sorted(out.glob(f"*/{MANIFEST_FILE}"), reverse=True):
        run = _open_quietly(manifest.parent)
        if run is None or run.manifest.run_key != key or run.manifest.finished_utc is None \
                or run.manifest.parser != parser.name:
            continue
        try:
            metrics = run.read_metrics()
        except (OSError, ValueError):
            continue
        if isinstance(metrics, dict) and metrics.get("complete") and not metrics.get("n_failed"):
            return RunResult(run.path, metrics, int(metrics.get("n_answered", 0)))
    return None


def _find_unfinished(out: Path, key: str, lock_name: str
                     ) -> tuple[tuple[RunDir, RunLock] | None, list[tuple[Path, LockHolder]]]:
    """The newest unfinished run of `key` whose `lock_name` this process could take (returned locked), and
    the unfinished ones skipped because another process holds them."""
    busy: list[tuple[Path, LockHolder]] = []
    if not out.is_dir():
        return None, busy
    for manifest in sorted(out.glob(f"*/{MANIFEST_FILE}"), reverse=True):
        run = _open_quietly(manifest.parent)
        if run is None or run.manifest.run_key != key or run.manifest.finished_utc is not None:
            continue
        got = RunLock.try_acquire(run.path / lock_name)
        if isinstance(got, LockHolder):
            busy.append((run.path, got))
            continue
        run = _open_quietly(run.path)          # it may have finished between reading and locking
        if run is not None and run.manifest.finished_utc is None:
            return (run, got), busy
        got.release()
    return None, busy


def _open_quietly(path: Path) -> RunDir | None:
    try:
        return RunDir.open(path)
    except (DeemEvalError, json.JSONDecodeError, OSError):
        return None


def _wait_for_rank0_run(out: Path, key: str, lock_name: str) -> tuple[RunDir, RunLock]:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        found, busy = _find_unfinished(out, key, lock_name)
        if found is not None:
            return found
        if busy:
            path, holder = busy[0]
            raise RunLockedError(f"{path}: rank {os.environ.get('RANK')} of this run is already being answered "
                                 f"by {holder.describe()}; stop it, or wait for it to finish.", holder)
        time.sleep(0.2)
    raise DeemEvalError(f"rank {os.environ.get('RANK')}: rank 0 did not create the run directory in {out}")


def rank_timeout(options: RunOptions) -> float:
    """Seconds without progress after which a rank is given up on: the option, else the environment, else 10 min."""
    return seconds_setting(options.rank_timeout_s, RANK_TIMEOUT_ENV, RANK_TIMEOUT_S)


def _begin_attempt(run_dir: RunDir, options: RunOptions) -> str:
    """This attempt's id. Every rank first drops its own marker (it belongs to an earlier attempt); rank 0 makes a
    fresh id, the others wait for it, so a marker can only ever carry the id of the attempt it was written in."""
    run_dir.marker_path(options.rank).unlink(missing_ok=True)
    if options.rank == 0:
        attempt = uuid.uuid4().hex
        run_dir.write_attempt(attempt, lock_holder_info(run_dir.path / LOCK_FILE))
        return attempt
    return _wait_for_attempt(run_dir, options.rank, rank_timeout(options))


def _wait_for_attempt(run_dir: RunDir, rank: int, timeout: float) -> str:
    """Rank 0's id for this attempt: `attempt.json` counts only while its writer is the live holder of the run's
    lock, so the file of an interrupted attempt (or of the previous rank 0, killed outright) is not taken up."""
    deadline = time.monotonic() + timeout
    while True:
        found = run_dir.read_attempt()
        if found is not None and _is_live_holder(found[1], lock_holder_info(run_dir.path / LOCK_FILE)):
            return found[0]
        if time.monotonic() > deadline:
            raise DeemEvalError(f"{run_dir.path}: rank {rank}: rank 0 did not start this attempt within "
                                f"{timeout:.0f} s (no current {ATTEMPT_FILE}); start all ranks together. This "
                                f"rank's answers so far are kept in {run_dir.samples_path(rank).name}.")
        time.sleep(0.2)


def _is_live_holder(writer: LockHolder, holder: LockHolder) -> bool:
    """`writer` holds the lock now: the lock file names it (it is truncated on release) and, on this host, its
    process exists (a holder killed outright leaves its name behind). Across hosts the name alone must do."""
    if writer.pid is None or holder.pid is None or writer != holder:   # equal holders share the pid
        return False
    if holder.host != socket.gethostname():
        return True
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # it exists, owned by someone else
        return True
    return True


def _wait_for_ranks(run_dir: RunDir, world_size: int, attempt: str, timeout: float) -> None:
    """Until every other rank's marker carries this attempt; fails, naming the missing ranks, once one of them
    shows no progress (its answers, failures or lock file unchanged) for `timeout` s. Nothing is deleted then, so
    rerunning all ranks resumes from every answer written so far."""
    seen: dict[int, tuple[object, float]] = {}
    while True:
        missing = [r for r in range(1, world_size) if run_dir.read_marker(r) != attempt]
        if not missing:
            return
        now = time.monotonic()
        for r in missing:
            state = _rank_progress(run_dir, r)
            if r not in seen or seen[r][0] != state:
                seen[r] = (state, now)
        stalled = [r for r in missing if now - seen[r][1] > timeout]
        if stalled:
            raise DeemEvalError(
                f"{run_dir.path}: rank(s) {', '.join(map(str, missing))} of {world_size} did not finish this "
                f"attempt (rank(s) {', '.join(map(str, stalled))} made no progress for {timeout:.0f} s: not "
                f"started, crashed or hung). Every answer so far is kept; start all ranks again to resume the run.")
        time.sleep(0.2)


def _rank_progress(run_dir: RunDir, rank: int) -> tuple[tuple[int, int] | None, ...]:
    """What changes while rank `rank` works: its answers, its failures, and its lock (written when it starts)."""
    paths = (run_dir.samples_path(rank), run_dir.failures_path(rank), run_dir.path / f"{LOCK_FILE}.rank{rank}")
    return tuple(_stat_key(p) for p in paths)


def _stat_key(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _merge_ranks(run_dir: RunDir, world_size: int, attempt: str, timeout: float) -> None:
    _wait_for_ranks(run_dir, world_size, attempt, timeout)
    merged: dict[str, SampleRecord] = {r.id: r for r in run_dir.read_records()}
    failures: dict[str, Failure] = {f.id: f for f in run_dir.read_failures()}
    prompts: dict[str, str] = run_dir.read_prompts()
    for rank in range(world_size):
        prompts.update(run_dir.read_prompts(rank))
        for record in run_dir.read_records(rank):
            if record.id in merged and merged[record.id] != record:
                raise DeemEvalError(f"{run_dir.path}: sample {record.id!r} was answered differently by two ranks")
            merged[record.id] = record
        failures.update({f.id: f for f in run_dir.read_failures(rank)})
    run_dir.write_prompts(prompts)   # first: a merged sample never names a prompt not yet kept
    run_dir.write_records(merged[i] for i in sorted(merged))
    run_dir.write_failures(failures[i] for i in sorted(failures) if i not in merged)
    for rank in range(world_size):
        rank_lock = run_dir.path / f"{LOCK_FILE}.rank{rank}"   # the run is finished: nothing left to guard
        for path in (run_dir.samples_path(rank), run_dir.failures_path(rank), run_dir.prompts_path(rank),
                     run_dir.marker_path(rank), rank_lock):
            path.unlink(missing_ok=True)
    (run_dir.path / ATTEMPT_FILE).unlink(missing_ok=True)


def _manifest(adapter, split: Split, parser: Parser, options: RunOptions, key: str, mode: str,
              n_selected: int, content: str | None = None) -> RunManifest:
    return RunManifest(
        run_key=key, model=adapter.name, model_label=adapter.label, adapter_config=adapter.config_dict(),
        split_name=split.name, split_fingerprint=split.fingerprint,
        # resolved, so `deem-eval score RUN` finds the split from any working directory
        split_dir=str(split.directory.resolve()) if split.directory else "", benchmark=split.meta.benchmark,
        seed=options.seed, limit=options.limit, batch_size=options.batch_size, scoring=mode, parser=parser.name,
        deem_eval_version=__version__, git_sha=_git_sha(), library_versions=_library_versions(),
        device=str(adapter.device), started_utc=_utc_now(), world_size=options.world_size,
        n_selected=n_selected, content_fingerprint=content)


def _library_versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for name in LIBRARIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def _git_sha() -> str | None:
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                                capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def _utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-." else "-" for c in text).strip("-")[:60] or "x"
