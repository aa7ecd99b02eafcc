"""Write the benchmark's results: a Markdown table, JSON and a PNG chart."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Figure:
    """One measured figure: a ratio against a baseline measured in the same run.

    ``direction`` says which way is better: ``"<="`` (ratio at most ``bar``),
    ``">="`` (at least ``bar``) or ``None`` (reported, no bar).
    """

    name: str
    how: str
    measured: str
    baseline: str
    ratio: float
    bar: float | None = None
    direction: str | None = None
    detail: dict = field(default_factory=dict)
    checked: float | None = None  # what the bar applies to, when not the ratio (a time)

    @property
    def value(self) -> float:
        return self.ratio if self.checked is None else self.checked

    @property
    def holds(self) -> bool | None:
        if self.bar is None or self.direction is None:
            return None
        return self.value <= self.bar if self.direction == "<=" else self.value >= self.bar


def _verdict(f: Figure) -> str:
    if f.holds is None:
        return "reported"
    unit = "" if f.checked is None else " s"
    return ("holds" if f.holds else "MISSED") + f" ({f.direction} {f.bar:g}{unit})"


def table(figures: list[Figure], header: dict) -> str:
    lines = [
        "# Benchmark results",
        "",
        *(f"- {k}: {v}" for k, v in header.items()),
        "",
        "| figure | measured | baseline | ratio | bar |",
        "|---|---|---|---|---|",
    ]
    for f in figures:
        lines.append(f"| {f.name} | {f.measured} | {f.baseline} | {f.ratio:.2f}x | {_verdict(f)} |")
    lines += ["", "How each figure is measured: `benchmarks/README.md`.", ""]
    return "\n".join(lines)


def chart(figures: list[Figure], path: Path, title: str) -> None:
    """Each figure's ratio as a share of its bar (1 = exactly at the bar; left of it: met)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    barred = [f for f in figures if f.holds is not None]
    names = [f.name for f in barred]
    # distance to the bar as "times the allowed": <= bars: ratio / bar; >= bars: bar / ratio
    load = [f.value / f.bar if f.direction == "<=" else f.bar / max(f.value, 1e-9) for f in barred]
    colours = ["#2e7d32" if f.holds else "#c62828" for f in barred]
    fig, ax = plt.subplots(figsize=(9, 0.55 * len(barred) + 1.6))
    ax.barh(names[::-1], load[::-1], color=colours[::-1])
    ax.axvline(1.0, color="black", linewidth=1)
    for y, (f, x) in enumerate(zip(barred[::-1], load[::-1], strict=True)):
        shown = f"{f.value:.2f}x" if f.checked is None else f"{f.value:.3f} s"
        ax.text(x, y, f"  {shown} ({f.direction} {f.bar:g})", va="center", fontsize=8)
    ax.set_xlabel("measured / bar (below 1: the bar holds)")
    ax.set_xlim(0, max([*load, 1.0]) * 1.45)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(figures: list[Figure], out: Path, header: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(table(figures, header))
    rows = [asdict(f) | {"holds": f.holds} for f in figures]
    (out / "results.json").write_text(json.dumps({"header": header, "figures": rows}, indent=2))
    chart(figures, out / "results.png", f"credit-batch benchmarks, {header.get('rows', '')} rows")
