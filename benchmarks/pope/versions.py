"""Which published POPE version a question file is, by fingerprint (table: published_versions.json).

Several versions of the COCO files were published (a 2910-question random subset, a short-lived other
draw of images, "imange" typo fixes); numbers made on one are not comparable with another, and answers
matched by row position across versions are wrong. The table lists every distinct file content in the
upstream repository's history; `recognise` says which one a file is, or what it is closest to.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from .published import PublishedFile, content_fingerprint

TABLE = "published_versions.json"


@dataclass(frozen=True)
class KnownVersion:
    version: str                 # "coco/random@2023-10-09"
    dataset: str
    subset: str
    introduced: str              # date of the upstream commit that introduced this content
    introduced_commit: str
    seen_at_commits: tuple[str, ...]
    current: bool                # still the content at upstream HEAD
    upstream_path: str
    rows: int
    yes: int
    no: int
    content_sha256: str
    normalised_sha256: str
    file_sha256: tuple[str, ...]
    note: str

    @property
    def short_commit(self) -> str:
        return self.introduced_commit[:7]


@dataclass(frozen=True)
class Recognition:
    """The verdict on one file: an exact version, a spelling variant of one, or unknown."""

    file: PublishedFile
    version: KnownVersion | None          # same rows as this published version
    byte_identical: bool                  # ... and the same bytes as upstream's file
    spelling_variant_of: tuple[KnownVersion, ...] = ()   # same rows up to "imange" -> "image"

    def describe(self) -> str:
        f = self.file
        yes, no = f.counts
        head = f"{f.path}: {len(f.questions)} questions ({yes} yes / {no} no)"
        if self.version is not None:
            v = self.version
            state = "current upstream version" if v.current else "superseded upstream version"
            copy = "byte-identical to upstream's file" if self.byte_identical else \
                f"same rows as upstream, different layout ({f.layout.kind}, {_newline_name(f.layout.newline)})"
            return (f"{head}\n  recognised: POPE {v.version} ({state}; introduced in {v.short_commit}, "
                    f"{v.upstream_path}); {copy}.\n  {v.note}")
        if self.spelling_variant_of:
            names = ", ".join(v.version for v in self.spelling_variant_of)
            return (f"{head}\n  not a published version, but the same questions as {names} up to the "
                    f"'imange'/'image' spelling.")
        return (f"{head}\n  not a published POPE version (content sha256 {f.content_sha256[:12]}…); "
                "numbers on it are not comparable with published POPE numbers.")


def _newline_name(newline: str) -> str:
    return "CRLF line endings" if newline == "\r\n" else "LF line endings"


@lru_cache(maxsize=1)
def known_versions() -> tuple[KnownVersion, ...]:
    data = json.loads(resources.files(__package__).joinpath(TABLE).read_text(encoding="utf-8"))
    return tuple(KnownVersion(
        version=e["version"], dataset=e["dataset"], subset=e["subset"], introduced=e["introduced"],
        introduced_commit=e["introduced_commit"], seen_at_commits=tuple(e["seen_at_commits"]),
        current=bool(e["current"]), upstream_path=e["upstream_path"], rows=int(e["rows"]), yes=int(e["yes"]),
        no=int(e["no"]), content_sha256=e["content_sha256"], normalised_sha256=e["normalised_sha256"],
        file_sha256=tuple(e["file_sha256"]), note=e["note"]) for e in data["versions"])


def recognise(file: PublishedFile) -> Recognition:
    content = file.content_sha256
    for version in known_versions():
        if version.content_sha256 == content:
            return Recognition(file, version, file.file_sha256 in version.file_sha256)
    normalised = content_fingerprint(file.questions, normalise_spelling=True)
    variants = tuple(v for v in known_versions() if v.normalised_sha256 == normalised)
    return Recognition(file, None, False, variants)


def release_tag(recognitions: list[Recognition]) -> str:
    """A short tag for a set of files: the newest introduction date, or 'custom' if any is unknown."""
    if any(r.version is None for r in recognitions):
        return "custom"
    return max(r.version.introduced for r in recognitions)  # type: ignore[union-attr]
