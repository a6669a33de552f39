"""Derive a corrupted split from any split: every (image, corruption, severity) once, as PNG under images/.

    <out>/images/<corruption>/<severity>/<source image path, .png>
    sample ids   "<source id>@<corruption>-<severity>", group gains `corruption` and `severity`

Determinism: the draws for one output image come from (seed, source image path as written in the
split, corruption, severity) only, every image is computed alone with one torch thread, and PNGs are
written with fixed settings, so the output is byte-identical with 1 or N workers, in any order.

Resuming: a build records the parameters that decide its bytes (source fingerprint, seed, backend) in
.corrupt-build.json and, as it goes, "sha256  path" of every finished output in .corrupt-done.tsv. Run
again with the same parameters, it skips the images whose outputs are on disk with the recorded hash and
redoes the rest (other corruptions, severities or --max-images may be chosen: outputs no longer wanted are
removed). A finished split keeps its images.sha256, which a rerun checks the same way.
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deem_eval.core.atomic import atomic_write_bytes
from deem_eval.core.errors import DeemEvalError
from deem_eval.core.splits import IMAGE_HASHES_FILE, BuilderInfo, Sample, Split, sha256_file

from . import catalog
from .backends import BACKENDS
from .images import ImageTooSmallError
from .ops import single_thread
from .spec import check_severity

DERIVE_VERSION = 2              # bump when output bytes change for the same parameters (2: PNG zlib strategy RLE)
PARAMS_FILE = ".corrupt-build.json"
DONE_FILE = ".corrupt-done.tsv"
PNG_LEVEL = 1                   # zlib level: level 6 takes 2-4x longer for ~5 % smaller files
# zlib strategy (Pillow's compress_type for PNG): Z_RLE (3) at level 1 encoded 20 corrupted images 13 % faster
# than the default strategy and 7-9 % smaller (224 px and 640 x 480), decoding as fast to the same pixels.
PNG_STRATEGY = 3                # zlib.Z_RLE


@dataclass(frozen=True)
class DeriveConfig:
    corruptions: tuple[str, ...]
    severities: tuple[int, ...]
    seed: int = 0
    backend: str = "ours"
    max_images: int | None = None     # corrupt only this many source images (chosen by hash of seed + path)
    name: str | None = None           # split name (default "<source name>-c")
    benchmark: str | None = None      # benchmark the split belongs to (default "<source benchmark>-c")
    skip_small: bool = False          # drop (and list) images below a corruption's minimum size
    workers: int = 1
    progress: bool = True

    def check(self) -> None:
        if not self.corruptions:
            raise DeemEvalError("no corruption chosen")
        for name in self.corruptions:
            catalog.get(name)
        for severity in self.severities:
            check_severity(severity)
        if not self.severities:
            raise DeemEvalError("no severity chosen")
        if self.backend not in BACKENDS:
            raise DeemEvalError(f"unknown backend {self.backend!r}; choose one of {', '.join(BACKENDS)}")
        if self.max_images is not None and self.max_images < 1:
            raise DeemEvalError(f"max_images must be at least 1, got {self.max_images}")
        if self.workers < 1:
            raise DeemEvalError(f"--workers must be at least 1, got {self.workers}")


@dataclass(frozen=True)
class Output:
    corruption: str
    severity: int
    path: str          # relative to the split directory


@dataclass(frozen=True)
class ImageTask:
    key: str           # the source image as written in the split (the randomness key)
    source: str        # absolute path to read
    outputs: tuple[Output, ...]


@dataclass
class ImageResult:
    key: str
    status: str                     # "ok" | "unreadable" | "too_small"
    message: str = ""
    hashes: dict[str, str] = field(default_factory=dict)   # output path -> sha256


def output_stem(key: str) -> str:
    """Where a source image's corrupted versions go below images/<corruption>/<severity>/ (no suffix)."""
    path = posixpath.normpath(key.replace("\\", "/"))
    parts = path.split("/")
    if posixpath.isabs(path) or ".." in parts or parts[0] in ("", "."):
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
        return f"_external/{digest}/{posixpath.splitext(parts[-1])[0]}"
    return posixpath.splitext(path)[0]


def plan(source: Split, config: DeriveConfig) -> tuple[list[ImageTask], dict[str, list[Sample]]]:
    """The source images to corrupt (sorted by key) with their outputs, and the samples of each."""
    by_image: dict[str, list[Sample]] = {}
    for sample in source.samples:
        by_image.setdefault(sample.image, []).append(sample)
    keys = sorted(by_image)
    if config.max_images is not None and config.max_images < len(keys):
        ranked = sorted(keys, key=lambda k: hashlib.sha256(f"{config.seed}\x1f{k}".encode()).digest())
        keys = sorted(ranked[:config.max_images])
        by_image = {k: by_image[k] for k in keys}
    stems: dict[str, str] = {}
    taken: dict[str, str] = {}
    for key in keys:
        stem = output_stem(key)
        if stem in taken:  # "a.jpg" and "a.png" would both become "a.png": keep the suffix for the second
            stem = output_stem(key.replace(".", "_"))
            if stem in taken:
                raise DeemEvalError(f"source images {taken[stem]!r} and {key!r} map to the same output name")
        taken[stem] = key
        stems[key] = stem
    tasks = []
    for key in keys:
        outputs = tuple(Output(c, s, f"images/{c}/{s}/{stems[key]}.png")
                        for c in config.corruptions for s in config.severities)
        tasks.append(ImageTask(key, str(source.image_path(by_image[key][0])), outputs))
    return tasks, by_image


def derive_corrupted_split(source: Split, out_dir: Path, config: DeriveConfig) -> Split:
    """Write the corrupted split into out_dir (resuming a previous run of the same build) and return it."""
    config.check()
    out_dir = Path(out_dir)
    tasks, by_image = plan(source, config)
    params = _byte_params(source, config)
    done = _prepare(out_dir, params)
    todo = [t for t in tasks if not _finished(out_dir, t, done)]
    skipped = len(tasks) - len(todo)
    pending = {t.key for t in todo}
    results = {t.key: ImageResult(t.key, "ok", hashes={o.path: done[o.path] for o in t.outputs})
               for t in tasks if t.key not in pending}
    if config.progress and skipped:
        import sys

        print(f"corrupt: {skipped} of {len(tasks)} images already done in {out_dir}, resuming", file=sys.stderr)
    with open(out_dir / DONE_FILE, "a", encoding="utf-8") as log:
        for result in _run(todo, out_dir, config, total=len(tasks), initial=skipped):
            if result.status == "too_small" and not config.skip_small:
                raise DeemEvalError(f"{result.message} (or pass --skip-small to leave such images out)")
            results[result.key] = result
            log.writelines(f"{digest}  {path}\n" for path, digest in sorted(result.hashes.items()))
            log.flush()
    _remove_unplanned(out_dir, tasks, progress=config.progress)
    split = _assemble(source, config, tasks, by_image, results).save(out_dir)
    (out_dir / DONE_FILE).unlink(missing_ok=True)
    return split


def _remove_unplanned(out_dir: Path, tasks: Sequence[ImageTask], *, progress: bool) -> None:
    """Delete images an earlier build in out_dir made for other corruptions, severities or images, so
    images/ and images.sha256 hold exactly this split's images."""
    planned = {o.path for t in tasks for o in t.outputs}
    images = out_dir / "images"
    stale = [p for p in images.rglob("*") if p.is_file() and p.relative_to(out_dir).as_posix() not in planned] \
        if images.is_dir() else []
    for path in stale:
        path.unlink()
    if stale and progress:
        import sys

        print(f"corrupt: removed {len(stale)} image(s) left by an earlier build with other settings",
              file=sys.stderr)


def _byte_params(source: Split, config: DeriveConfig) -> dict[str, Any]:
    """What decides the output images' bytes; a resumed build must match it exactly."""
    return {"version": DERIVE_VERSION, "source_fingerprint": source.fingerprint, "seed": config.seed,
            "backend": config.backend, "png_level": PNG_LEVEL, "png_strategy": PNG_STRATEGY}


def _prepare(out_dir: Path, params: dict[str, Any]) -> dict[str, str]:
    """Check out_dir can hold this build; return the outputs already made (path -> sha256)."""
    params_path = out_dir / PARAMS_FILE
    trust_done = True
    if out_dir.exists() and any(out_dir.iterdir()):
        if not params_path.is_file():
            raise DeemEvalError(f"{out_dir} exists and does not hold a corrupted split; choose a new --out "
                                "or empty it")
        previous = _read_params(params_path)
        if previous is None:     # torn by a crash: the outputs' settings are unknown, so redo them all
            trust_done = False
        elif previous != params:
            changed = ", ".join(k for k in sorted(set(params) | set(previous)) if params.get(k) != previous.get(k))
            raise DeemEvalError(f"{out_dir} holds a corrupted split built with different settings ({changed}); "
                                "choose a new --out or delete that directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    if not trust_done:
        for name in (IMAGE_HASHES_FILE, DONE_FILE):
            (out_dir / name).unlink(missing_ok=True)
    atomic_write_bytes(params_path, (json.dumps(params, indent=2, sort_keys=True) + "\n").encode("utf-8"),
                       fsync=True)
    done: dict[str, str] = {}
    for name in (IMAGE_HASHES_FILE, DONE_FILE):
        path = out_dir / name
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                digest, sep, rel = line.partition("  ")
                if sep:
                    done[rel] = digest
    return done


def _read_params(path: Path) -> dict[str, Any] | None:
    """The recorded build settings, or None (with a one-line warning) when the file is unreadable."""
    try:
        previous = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError) as exc:     # UnicodeDecodeError and JSONDecodeError are ValueErrors
        reason = str(exc)
    else:
        if isinstance(previous, dict):
            return previous
        reason = f"a JSON {type(previous).__name__}, not an object"
    print(f"warning: {path}: unreadable ({reason}); starting the build over", file=sys.stderr)
    return None


def _finished(out_dir: Path, task: ImageTask, done: dict[str, str]) -> bool:
    for output in task.outputs:
        path = out_dir / output.path
        if output.path not in done or not path.is_file() or sha256_file(path) != done[output.path]:
            return False
    return True


def _run(tasks: Sequence[ImageTask], out_dir: Path, config: DeriveConfig, *, total: int,
         initial: int) -> Iterator[ImageResult]:
    from tqdm import tqdm

    bar = tqdm(total=total, initial=initial, desc="corrupt", unit="img", disable=not config.progress,
               dynamic_ncols=True)
    try:
        if config.workers == 1 or len(tasks) <= 1:
            with single_thread():
                for task in tasks:
                    result = corrupt_task(task, str(out_dir), config.seed, config.backend)
                    bar.update(1)
                    yield result
            return
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=config.workers, mp_context=context,
                                 initializer=_init_worker) as pool:
            pending: set[Future] = set()
            queue = iter(tasks)
            for task in queue:  # keep a bounded number of tasks in flight
                pending.add(pool.submit(corrupt_task, task, str(out_dir), config.seed, config.backend))
                if len(pending) >= 4 * config.workers:
                    break
            try:
                while pending:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in finished:
                        bar.update(1)
                        yield future.result()
                        for task in queue:
                            pending.add(pool.submit(corrupt_task, task, str(out_dir), config.seed,
                                                    config.backend))
                            break
            finally:
                for future in pending:
                    future.cancel()
    finally:
        bar.close()


def _init_worker() -> None:
    single_thread().__enter__()


def corrupt_task(task: ImageTask, out_dir: str, seed: int, backend_name: str) -> ImageResult:
    """Corrupt one source image every requested way and write the PNGs (runs in a worker)."""
    from PIL import Image

    from . import corruption_seed
    from .backends import get_backend
    from .images import check_size, load_rgb

    try:
        image = load_rgb(Path(task.source))
    except DeemEvalError as exc:
        return ImageResult(task.key, "unreadable", str(exc))
    backend = get_backend(backend_name)
    height, width = image.shape[:2]
    try:
        for name in sorted({o.corruption for o in task.outputs}):
            check_size(height, width, catalog.get(name).min_size, what=f"image {task.source}", corruption=name)
    except ImageTooSmallError as exc:
        return ImageResult(task.key, "too_small", str(exc))
    hashes = {}
    for output in task.outputs:
        pixels = backend.corrupt(image, output.corruption, output.severity,
                                 corruption_seed(seed, task.key, output.corruption, output.severity))
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG", compress_level=PNG_LEVEL, compress_type=PNG_STRATEGY)
        data = buffer.getvalue()
        path = Path(out_dir) / output.path
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data)
        hashes[output.path] = hashlib.sha256(data).hexdigest()
    return ImageResult(task.key, "ok", hashes=hashes)


def _assemble(source: Split, config: DeriveConfig, tasks: Sequence[ImageTask],
              by_image: dict[str, list[Sample]], results: dict[str, ImageResult]) -> Split:
    samples = []
    for task in tasks:
        if results[task.key].status != "ok":
            continue
        for output in task.outputs:
            for sample in by_image[task.key]:
                group = {**sample.group, "corruption": output.corruption, "severity": output.severity}
                samples.append(Sample(f"{sample.id}@{output.corruption}-{output.severity}", output.path,
                                      sample.question, sample.answer, group))
    unreadable = {k: r.message for k, r in sorted(results.items()) if r.status == "unreadable"}
    too_small = {k: r.message for k, r in sorted(results.items()) if r.status == "too_small"}
    dropped = sum(len(by_image[k]) for k in (*unreadable, *too_small))
    extra: dict[str, Any] = {"images": len(tasks) - len(unreadable) - len(too_small),
                             "unreadable_count": len(unreadable), "dropped_samples": dropped}
    if unreadable:
        extra["unreadable_images"] = unreadable
    if too_small:
        extra["too_small_count"] = len(too_small)
        extra["too_small_images"] = too_small
    if not samples:
        raise DeemEvalError(f"no image of split {source.name!r} could be corrupted "
                            f"({len(unreadable)} unreadable, {len(too_small)} too small)")
    params = {"corruptions": list(config.corruptions), "severities": list(config.severities),
              "backend": config.backend, "max_images": config.max_images, "source_split": source.name,
              "source_benchmark": source.meta.benchmark, "version": DERIVE_VERSION}
    return Split.create(name=config.name or f"{source.name}-c",
                        benchmark=config.benchmark or f"{source.meta.benchmark}-c",
                        samples=samples, image_root=".",
                        builder=BuilderInfo("corrupt", params, config.seed, source.fingerprint),
                        candidates=source.meta.candidates, extra=extra)

