"""Contact sheets for eyeballing SynthScenes: `python -m deem_eval.benchmarks.synthscenes.preview OUT_DIR`.

Writes scenes.png (16 scenes) and styles.png (every category in every style) so a person can check that
objects are recognisable at a given size.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from .categories import CATEGORIES
from .draw import STYLES
from .render import render_scene, render_single_object


def contact_sheet(images: Sequence[Image.Image], cols: int, gap: int = 4) -> Image.Image:
    """Tile equally sized images into a grid on white."""
    w, h = images[0].size
    rows = (len(images) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * (w + gap) + gap, rows * (h + gap) + gap), (255, 255, 255))
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        sheet.paste(im, (gap + c * (w + gap), gap + r * (h + gap)))
    return sheet


def scenes_sheet(seed: int = 0, n: int = 16, size: int = 224, cols: int = 4) -> Image.Image:
    return contact_sheet([render_scene(seed, i, size=size)[0] for i in range(n)], cols)


def styles_sheet(seed: int = 0, size: int = 96, styles: Sequence[str] = STYLES, cols: int = 16) -> Image.Image:
    """Every category in every style: each style fills ceil(#categories / cols) rows."""
    rows_per_style = -(-len(CATEGORIES) // cols)
    tiles: list[Image.Image] = []
    for s in styles:
        block = [render_single_object(seed, "preview", c.name, size=size, style=s) for c in CATEGORIES]
        tiles += block + [Image.new("RGB", (size, size), (255, 255, 255))] * (rows_per_style * cols - len(block))
    return contact_sheet(tiles, cols, gap=2)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("out", type=Path)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=224)
    a = p.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    scenes_sheet(a.seed, size=a.size).save(a.out / "scenes.png")
    styles_sheet(a.seed, size=max(48, a.size // 2)).save(a.out / "styles.png")
    print(f"wrote {a.out / 'scenes.png'} and {a.out / 'styles.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
