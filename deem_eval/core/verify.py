"""`deem-eval verify`: recompute a split's fingerprints and image hashes and list every difference."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from deem_eval.core.splits import IMAGE_HASHES_FILE, SAMPLES_FILE, Split, canonical_line, sha256_file


@dataclass
class VerifyReport:
    split_dir: Path
    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        head = f"{self.split_dir}: {'OK' if self.ok else f'{len(self.problems)} problem(s)'}"
        return [head, *(f"  ok: {c}" for c in self.checked), *(f"  DIFFERS: {p}" for p in self.problems)]


def verify_split(split_dir: Path, *, check_sources: bool = False) -> VerifyReport:
    report = VerifyReport(split_dir)
    split = Split.load(split_dir, check_fingerprint=False)
    actual = sha256_file(split_dir / SAMPLES_FILE)
    if actual != split.meta.samples_sha256:
        report.problems.append(f"{SAMPLES_FILE} sha256 is {actual}, split.json says {split.meta.samples_sha256}")
    else:
        report.checked.append(f"{SAMPLES_FILE} fingerprint {actual[:16]}… ({split.meta.count} samples)")
    canonical = "".join(canonical_line(s) for s in split.samples).encode("utf-8")
    if canonical != (split_dir / SAMPLES_FILE).read_bytes():
        report.problems.append(f"{SAMPLES_FILE} is not in canonical form (edited by hand?)")
    hashes = split_dir / IMAGE_HASHES_FILE
    if hashes.exists():
        listed, malformed = {}, 0
        for lineno, line in enumerate(hashes.read_bytes().decode("utf-8", "replace").splitlines(), start=1):
            digest, _, rel = line.partition("  ")
            if not line.strip():
                continue
            if not rel or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                report.problems.append(f"{IMAGE_HASHES_FILE}:{lineno}: malformed line {line[:80]!r} (expected "
                                       "'<sha256>  <relative path>'); rebuild the split to rewrite it")
                malformed += 1
                continue
            listed[rel] = digest
        bad = malformed
        for rel, digest in sorted(listed.items()):
            path = split_dir / rel
            if not path.is_file():
                report.problems.append(f"{rel}: missing")
                bad += 1
            elif sha256_file(path) != digest:
                report.problems.append(f"{rel}: content changed (sha256 differs from {IMAGE_HASHES_FILE})")
                bad += 1
        on_disk = {p.relative_to(split_dir).as_posix() for p in (split_dir / "images").rglob("*") if p.is_file()} \
            if (split_dir / "images").is_dir() else set()
        for rel in sorted(on_disk - set(listed)):
            report.problems.append(f"{rel}: not listed in {IMAGE_HASHES_FILE}")
        if not bad:
            report.checked.append(f"{len(listed)} image hashes")
    if check_sources:
        missing = [s.image for s in split.samples if not split.image_path(s).is_file()]
        unique_missing = sorted(set(missing))
        if unique_missing:
            report.problems.append(f"{len(unique_missing)} referenced image(s) missing under "
                                   f"{split.image_root_path()}, e.g. {unique_missing[0]}")
        else:
            report.checked.append(f"all referenced images exist under {split.image_root_path()}")
    return report
