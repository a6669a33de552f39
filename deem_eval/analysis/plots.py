"""Figures for reports (matplotlib, Agg, no pyplot state): each written as PNG and SVG.

- accuracy vs severity, one line per model (0 = clean) with 95% Wilson bands on a fixed 0-100 axis (so a
  point of noise is not zoomed into a cliff) and a dashed chance line, one panel per corrupted split;
- corruption × model heatmap of accuracy averaged over severities, one panel per corrupted split;
- POPE yes-ratio vs F1: a model that says "yes" too often drifts right and loses F1.

Every figure takes an optional `colors` (model -> colour) so that a report gives a model one colour throughout.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from deem_eval.analysis.robustness import RobustnessSummary
from deem_eval.core.errors import DeemEvalError

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


@dataclass(frozen=True)
class PlotFiles:
    name: str
    title: str
    png: Path
    svg: Path

    def svg_bytes(self) -> bytes:
        return self.svg.read_bytes()


@dataclass(frozen=True)
class YesF1Point:
    model: str
    split: str
    subset: str
    yes_ratio: float
    f1: float


def _figure(width: float, height: float):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise DeemEvalError(f"the report's figures need matplotlib ({exc}): pip install 'deem-eval[report]'") from None

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, out_dir: Path, name: str, title: str) -> PlotFiles:
    import matplotlib

    out_dir.mkdir(parents=True, exist_ok=True)
    png, svg = out_dir / f"{name}.png", out_dir / f"{name}.svg"
    # a fixed hash salt and no dates: the same data gives byte-identical files
    with matplotlib.rc_context({"svg.hashsalt": name, "svg.fonttype": "path"}):
        fig.savefig(png, dpi=130, metadata={"Software": None})
        fig.savefig(svg, metadata={"Date": None, "Creator": None})
    return PlotFiles(name, title, png, svg)


def model_colors(models: Sequence[str]) -> dict[str, tuple]:
    """A stable colour per model (sorted names -> tab10), shared by every figure of a report."""
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return {m: cmap(i % 10) for i, m in enumerate(sorted(set(models)))}


def _panels(n: int) -> tuple[int, int]:
    cols = min(n, 2)
    return (n + cols - 1) // cols, cols


def _palette(models: Sequence[str], colors: Mapping[str, tuple] | None) -> Mapping[str, tuple]:
    """The report's palette when given (models it lacks get a grey), else one for these models alone."""
    if colors is None:
        return model_colors(models)
    return {m: colors.get(m, (0.5, 0.5, 0.5, 1.0)) for m in models} | dict(colors)


def accuracy_vs_severity(summaries: Sequence[RobustnessSummary], out_dir: Path,
                         name: str = "accuracy_vs_severity", *,
                         colors: Mapping[str, tuple] | None = None) -> PlotFiles | None:
    """Accuracy per severity pooled over corruptions, so each point has a count and hence a Wilson band."""
    if not summaries:
        return None
    splits = sorted({s.split for s in summaries})
    colors = _palette([s.model for s in summaries], colors)
    rows, cols = _panels(len(splits))
    fig = _figure(6.4 * cols, 4.0 * rows)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, split in zip(axes.flat, splits):
        for i, summary in enumerate(sorted((s for s in summaries if s.split == split), key=lambda s: s.model)):
            cells = summary.pooled_by_severity
            points = [(x, v) for x in sorted(cells) if (v := cells[x].accuracy.value) is not None]
            xs = [x for x, _ in points]
            ys = [v * 100 for _, v in points]
            lows = [(cells[x].accuracy.ci_low or 0.0) * 100 for x in xs]
            highs = [(cells[x].accuracy.ci_high or 0.0) * 100 for x in xs]
            color = colors[summary.model]
            ax.fill_between(xs, lows, highs, color=color, alpha=0.18, linewidth=0)
            ax.plot(xs, ys, marker=MARKERS[i % len(MARKERS)], color=color, label=summary.model, linewidth=1.8)
        ax.axhline(50, color="0.4", linestyle="--", linewidth=1, label="chance (50%)")
        ax.set_ylim(0, 100)
        ax.set_title(split, fontsize=11)
        ax.set_xlabel("severity (0 = clean)")
        ax.set_ylabel("accuracy (%), pooled over corruptions")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    for ax in list(axes.flat)[len(splits):]:
        ax.set_visible(False)
    return _save(fig, out_dir, name, "Accuracy vs corruption severity")


def corruption_heatmap(summaries: Sequence[RobustnessSummary], out_dir: Path,
                       name: str = "corruption_heatmap", *,
                       colors: Mapping[str, tuple] | None = None) -> PlotFiles | None:
    """Model names on the x axis are written in the model's colour, as in the other figures."""
    import numpy as np

    if not summaries:
        return None
    palette = _palette([s.model for s in summaries], colors)
    splits = sorted({s.split for s in summaries})
    n_corr = max(len({c.corruption for s in summaries if s.split == sp for c in s.corruptions}) for sp in splits)
    n_models = max(len({s.model for s in summaries if s.split == sp}) for sp in splits)
    rows, cols = _panels(len(splits))
    fig = _figure(max(4.5, 1.3 * n_models + 2.6) * cols, max(3.0, 0.38 * n_corr + 1.6) * rows)
    axes = fig.subplots(rows, cols, squeeze=False)
    image = None
    for ax, split in zip(axes.flat, splits):
        group = sorted((s for s in summaries if s.split == split), key=lambda s: s.model)
        corruptions = sorted({c.corruption for s in group for c in s.corruptions})
        models = [s.model for s in group]
        grid = np.full((len(corruptions), len(models)), np.nan)
        for j, s in enumerate(group):
            for c in s.corruptions:
                grid[corruptions.index(c.corruption), j] = c.mean_accuracy * 100
        image = ax.imshow(grid, cmap="RdYlGn", vmin=40, vmax=100, aspect="auto")
        ax.set_xticks(range(len(models)), labels=models, rotation=30, ha="right", fontsize=9)
        for tick, model in zip(ax.get_xticklabels(), models):
            tick.set_color(palette[model])
        ax.set_yticks(range(len(corruptions)), labels=corruptions, fontsize=9)
        for (i, j), value in np.ndenumerate(grid):
            if not np.isnan(value):
                ax.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=8,
                        color="black" if 55 < value < 92 else "white")
        ax.set_title(f"{split}: accuracy (%), mean over severities", fontsize=11)
    for ax in list(axes.flat)[len(splits):]:
        ax.set_visible(False)
    if image is not None:
        fig.colorbar(image, ax=list(axes.flat)[:len(splits)], shrink=0.8, label="accuracy (%)")
    return _save(fig, out_dir, name, "Corruption × model accuracy")


def yes_ratio_vs_f1(points: Sequence[YesF1Point], out_dir: Path, name: str = "yes_ratio_vs_f1",
                    title: str = "POPE: yes-ratio vs F1", *,
                    colors: Mapping[str, tuple] | None = None) -> PlotFiles | None:
    if not points:
        return None
    shown = sorted({p.model for p in points})
    colors = {m: c for m, c in _palette(shown, colors).items() if m in shown}
    subsets = sorted({p.subset for p in points})
    markers = {s: MARKERS[i % len(MARKERS)] for i, s in enumerate(subsets)}
    fig = _figure(6.8, 4.6)
    ax = fig.subplots()
    ax.axvline(50, color="0.6", linestyle=":", linewidth=1)
    ax.text(50.5, 0.02, "balanced (50% yes)", transform=ax.get_xaxis_transform(), fontsize=8, color="0.45")
    for p in points:
        ax.scatter(p.yes_ratio * 100, p.f1 * 100, color=colors[p.model], marker=markers[p.subset], s=60,
                   edgecolors="black", linewidths=0.5)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=c, marker="o", linestyle="", label=m) for m, c in colors.items()]
    handles += [Line2D([], [], color="0.3", marker=markers[s], linestyle="", label=s) for s in subsets]
    ax.legend(handles=handles, fontsize=8, loc="best", ncol=2)
    ax.set_xlabel("yes-ratio of answers (%)")
    ax.set_ylabel("F1 (%)")
    ax.set_xlim(-3, 103)
    ax.margins(y=0.08)
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=11)
    return _save(fig, out_dir, name, title)
