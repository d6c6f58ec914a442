"""Plots of the scale benchmark's results (``latest.json`` files written by ``benchmarks.scale``).

    .venv/bin/python -m benchmarks.plots benchmarks/results/latest.json [more.json ...] --out docs/images/benchmarks
    .venv/bin/python -m benchmarks.scale --plots docs/images/benchmarks     # the run's own results, after it

Three figures, each drawn only when the results hold what it needs (otherwise it is skipped, saying why):

- ``scale-vs-n.png``: detection latency p50 / p95 and FilterLogEvents calls against N, one line per mode (runs
  of one triggerer; needs two N or more);
- ``bytes-read.png``: bytes read per byte logged against N, per mode (and per K when several triggerers ran);
- ``several-triggerers.png``: latency p95 and FilterLogEvents calls against K, the number of triggerers of a run
  (the length of its ``triggerers`` list, 1 without one), one line per quota profile; needs two K or more.

The issue's goals are drawn dashed: p95 under 15 s; FilterLogEvents calls at most N / 5 (issue 9's, under its
``volume`` conditions); bytes read at most twice those logged (``volume`` too).

What goes on which axis is worked out by pure functions (`scale_vs_n`, `bytes_read`, `several_triggerers`,
returning a `Plot`); `draw` alone uses matplotlib (its Agg canvas: no display), which the ``bench`` extra
installs. Results given twice for the same line and point (say two files of the same run) keep the later one.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.modes import MODES
from benchmarks.report import TARGET_CALLS_PER_INVOCATION, TARGET_DOWNLOAD_RATIO, TARGET_P95_SECONDS

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "docs" / "images" / "benchmarks"
DPI = 100
# Inches per panel: at DPI, a two-panel figure is 1,000 x 420 pixels; one panel alone is wider, for its legend.
PANEL_SIZE = (5.0, 4.2)
SINGLE_PANEL_WIDTH = 6.5
# A panel with more lines than this has its legend under it, not over the lines.
LEGEND_INSIDE_MAX = 6
LEGEND_LINE_HEIGHT = 0.2  # inches added to the figure per line of a legend put under its panel

SCALE_VS_N = "scale-vs-n.png"
BYTES_READ = "bytes-read.png"
SEVERAL_TRIGGERERS = "several-triggerers.png"

# Line styles a series can have: a measured p50 (dotted), a measured figure (solid), a goal (dashed, grey).
SOLID, DOTTED, GOAL = "solid", "dotted", "goal"


class MissingData(Exception):
    """The results do not hold what a plot needs; the message says what is missing."""


@dataclass(frozen=True)
class Series:
    """One line: its points in order of x; `group` picks the colour (a mode's p50 and p95 share one)."""

    label: str
    x: tuple[float, ...]
    y: tuple[float, ...]
    group: str = ""
    style: str = SOLID


@dataclass(frozen=True)
class Panel:
    title: str
    xlabel: str
    ylabel: str
    series: tuple[Series, ...]
    log_x: bool = False
    log_y: bool = False
    integer_x: bool = False
    # The names of the dotted and the solid lines (("p50", "p95")) when each group has both: the legend then
    # names each group once, by its colour, and each style once.
    styles: tuple[str, str] | None = None


@dataclass(frozen=True)
class Plot:
    """A figure: a title over panels side by side, and notes for stdout (points replaced by later results)."""

    title: str
    panels: tuple[Panel, ...]
    notes: tuple[str, ...] = ()


def triggerers_of(result: dict[str, Any]) -> int:
    """K: how many triggerers shared the run (``triggerers`` lists each one's figures; older rows have none)."""
    return len(result.get("triggerers") or []) or 1


def conditions_of(result: dict[str, Any]) -> str:
    return result.get("conditions") or "today"


def quotas_of(result: dict[str, Any]) -> str:
    """The quota profile the proxy enforced; rows without one ran with their conditions' own quotas."""
    profile = result.get("quota_profile")
    return f"{profile} quotas" if profile and profile != "conditions" else "the conditions' quotas"


def setting_of(result: dict[str, Any]) -> str:
    return f"{conditions_of(result)} conditions, {quotas_of(result)}"


def _mode_order(mode: str) -> tuple[int, str]:
    names = list(MODES)
    return (names.index(mode) if mode in names else len(names), mode)


def _lines(
    results: Iterable[dict[str, Any]],
    key: Callable[[dict[str, Any]], Hashable],
    x: Callable[[dict[str, Any]], float],
    y: Callable[[dict[str, Any]], float | None],
    what: str,
    notes: list[str],
    name: Callable[[Any], str] = str,
) -> dict[Hashable, dict[float, float]]:
    """Group the results' (x, y) points by `key`, leaving out those without a y; a later result replaces an
    earlier one at the same key and x (noted, with the line's `name`)."""
    lines: dict[Hashable, dict[float, float]] = {}
    for result in results:
        value = y(result)
        if value is None:
            continue
        points = lines.setdefault(key(result), {})
        at = x(result)
        if at in points and points[at] != value:
            notes.append(
                f"{what}: {name(key(result))} at {at:g} given twice; kept the later ({value:g}, not {points[at]:g})"
            )
        points[at] = value
    return lines


def _series(points: dict[float, float], label: str, group: str, style: str = SOLID) -> Series:
    ordered = sorted(points.items())
    return Series(label, tuple(x for x, _ in ordered), tuple(y for _, y in ordered), group, style)


def _goal(label: str, points: Iterable[tuple[float, float]]) -> Series:
    ordered = sorted(set(points))
    return Series(label, tuple(x for x, _ in ordered), tuple(y for _, y in ordered), "goal", GOAL)


def _distinct(results: Iterable[dict[str, Any]], value: Callable[[dict[str, Any]], Any]) -> list[Any]:
    return sorted({value(result) for result in results})


def _subtitle(settings: list[str]) -> str:
    return f" ({settings[0]})" if len(settings) == 1 else ""


def _latency(key: str) -> Callable[[dict[str, Any]], float | None]:
    return lambda result: result.get(key)


def _calls(result: dict[str, Any]) -> float | None:
    """FilterLogEvents calls, left out at 0 (the panel is logarithmic)."""
    calls = result.get("filter_calls")
    return calls if calls else None


def _ratio(result: dict[str, Any]) -> float | None:
    downloaded, logged = result.get("bytes_downloaded"), result.get("bytes_logged")
    return None if downloaded is None or not logged else downloaded / logged


def scale_vs_n(results: Sequence[dict[str, Any]]) -> Plot:
    """Latency p50 / p95 (left) and FilterLogEvents calls (right, logarithmic) against N, a line per mode, for
    runs of one triggerer. Modes of several settings (conditions, quotas) get one line each per setting."""
    rows = [result for result in results if triggerers_of(result) == 1]
    sizes = _distinct(rows, lambda result: result["n"])
    if len(sizes) < 2:
        raise MissingData(f"needs runs of one triggerer at two N or more; found N = {sizes or 'none'}")
    settings = _distinct(rows, setting_of)

    def key(result: dict[str, Any]) -> tuple[tuple[int, str], str]:
        return (_mode_order(result["mode"]), setting_of(result) if len(settings) > 1 else "")

    def name(line: tuple[tuple[int, str], str]) -> str:
        (_, mode), setting = line
        return mode + (f" ({setting})" if setting else "")

    notes: list[str] = []
    n = lambda result: float(result["n"])  # noqa: E731
    p50 = _lines(rows, key, n, _latency("latency_p50"), "latency p50", notes, name)
    p95 = _lines(rows, key, n, _latency("latency_p95"), "latency p95", notes, name)
    calls = _lines(rows, key, n, _calls, "FilterLogEvents calls", notes, name)
    latency: list[Series] = []
    for line in sorted(set(p50) | set(p95)):
        latency.append(_series(p50.get(line, {}), f"{name(line)} p50", name(line), DOTTED))
        latency.append(_series(p95.get(line, {}), f"{name(line)} p95", name(line)))
    latency = [series for series in latency if series.x]
    span = (float(min(sizes)), float(max(sizes)))
    latency.append(_goal(f"goal: p95 < {TARGET_P95_SECONDS:g} s", ((x, TARGET_P95_SECONDS) for x in span)))
    call_lines = [_series(calls[line], name(line), name(line)) for line in sorted(calls)]
    if any(conditions_of(result) == "volume" for result in rows):
        call_lines.append(_goal("goal (volume): N / 5", ((x, x * TARGET_CALLS_PER_INVOCATION) for x in span)))
    return Plot(
        f"Scale benchmark: one triggerer, N invocations{_subtitle(settings)}",
        (
            Panel("Detection latency", "N (invocations)", "seconds", tuple(latency), log_x=True, styles=("p50", "p95")),
            Panel("FilterLogEvents calls", "N (invocations)", "calls", tuple(call_lines), log_x=True, log_y=True),
        ),
        tuple(notes),
    )


def bytes_read(results: Sequence[dict[str, Any]]) -> Plot:
    """Bytes read (FilterLogEvents and GetLogEvents answers) per byte logged against N, a line per mode, and
    per K when runs of several triggerers are among the results."""
    rows = [result for result in results if _ratio(result) is not None]
    sizes = _distinct(rows, lambda result: result["n"])
    if len(sizes) < 2:
        raise MissingData(f"needs bytes read and logged at two N or more; found N = {sizes or 'none'}")
    settings = _distinct(rows, setting_of)
    several = any(triggerers_of(result) > 1 for result in rows)

    def key(result: dict[str, Any]) -> tuple[tuple[int, str], int, str]:
        return (
            _mode_order(result["mode"]),
            triggerers_of(result) if several else 0,
            setting_of(result) if len(settings) > 1 else "",
        )

    def name(line: tuple[tuple[int, str], int, str]) -> str:
        (_, mode), k, setting = line
        return mode + (f", K = {k}" if k else "") + (f" ({setting})" if setting else "")

    notes: list[str] = []
    ratios = _lines(rows, key, lambda result: float(result["n"]), _ratio, "bytes read per byte logged", notes, name)
    lines = [_series(ratios[line], name(line), name(line)) for line in sorted(ratios)]
    if any(conditions_of(result) == "volume" for result in rows):
        span = (float(min(sizes)), float(max(sizes)))
        lines.append(_goal(f"goal (volume): {TARGET_DOWNLOAD_RATIO:g}x", ((x, TARGET_DOWNLOAD_RATIO) for x in span)))
    return Plot(
        f"Bytes read per byte logged{_subtitle(settings)}",
        (
            Panel(
                "FilterLogEvents and GetLogEvents answers",
                "N (invocations)",
                "bytes read per byte logged",
                tuple(lines),
                log_x=True,
            ),
        ),
        tuple(notes),
    )


def several_triggerers(results: Sequence[dict[str, Any]]) -> Plot:
    """Latency p95 (left) and FilterLogEvents calls (right) against K, a line per quota profile (and per mode,
    conditions or invocations per triggerer when the results hold several), with the goals: p95 under 15 s,
    calls at most N / 5 (N being all the run's invocations, over its K triggerers). Only lines that ran at two
    K or more are drawn (a run of one triggerer alone, say of another mode, says nothing against K)."""
    rows = _at_several_k(results)
    counts = _distinct(rows, triggerers_of)
    if len(counts) < 2:
        found = _distinct(results, triggerers_of)
        raise MissingData(f"needs runs of one setting at two K (triggerers) or more; found K = {found or 'none'}")
    modes = _distinct(rows, lambda result: result["mode"])
    conditions = _distinct(rows, conditions_of)
    shares = sorted({_share(result) for result in rows})

    def key(result: dict[str, Any]) -> str:
        parts = [quotas_of(result)]
        parts += [result["mode"]] if len(modes) > 1 else []
        parts += [f"{conditions_of(result)} conditions"] if len(conditions) > 1 else []
        parts += [f"{_share(result):,.0f} per triggerer"] if len(shares) > 1 else []
        return ", ".join(parts)

    notes: list[str] = []
    k = lambda result: float(triggerers_of(result))  # noqa: E731
    p95 = _lines(rows, key, k, _latency("latency_p95"), "latency p95", notes)
    calls = _lines(rows, key, k, lambda result: result.get("filter_calls"), "FilterLogEvents calls", notes)
    latency = [_series(p95[line], line, line) for line in sorted(p95)]
    latency.append(
        _goal(f"goal: p95 < {TARGET_P95_SECONDS:g} s", ((x, TARGET_P95_SECONDS) for x in map(float, counts)))
    )
    call_lines = [_series(calls[line], line, line) for line in sorted(calls)]
    for share in shares:
        label = "goal: N / 5" + (f" ({share:,.0f} per triggerer)" if len(shares) > 1 else "")
        goal = ((k(result), result["n"] * TARGET_CALLS_PER_INVOCATION) for result in rows if _share(result) == share)
        call_lines.append(_goal(label, goal))
    xlabel = "K (triggerers)" + (f", {shares[0]:,.0f} invocations each" if len(shares) == 1 else "")
    subtitle = f" ({modes[0]} mode, {conditions[0]} conditions)" if len(modes) == len(conditions) == 1 else ""
    return Plot(
        f"Several triggerers{subtitle}",
        (
            Panel("Detection latency p95", xlabel, "seconds", tuple(latency), integer_x=True),
            Panel("FilterLogEvents calls", xlabel, "calls", tuple(call_lines), integer_x=True),
        ),
        tuple(notes),
    )


def _at_several_k(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The results whose setting (quotas, mode, conditions, invocations per triggerer) ran at two K or more."""

    def setting(result: dict[str, Any]) -> tuple[Any, ...]:
        return (result.get("quota_profile"), result["mode"], conditions_of(result), _share(result))

    counts: dict[tuple[Any, ...], set[int]] = {}
    for result in results:
        counts.setdefault(setting(result), set()).add(triggerers_of(result))
    return [result for result in results if len(counts[setting(result)]) > 1]


def _share(result: dict[str, Any]) -> float:
    """Invocations per triggerer: a run's N over its K (invocation i goes to triggerer i mod K)."""
    return result["n"] / triggerers_of(result)


PLOTS: dict[str, Callable[[Sequence[dict[str, Any]]], Plot]] = {
    SCALE_VS_N: scale_vs_n,
    BYTES_READ: bytes_read,
    SEVERAL_TRIGGERERS: several_triggerers,
}


def legend_of(panel: Panel) -> list[tuple[str, str, str]]:
    """The panel's legend as (label, style, group): a line each, or with `styles` each group once (solid) and
    each style once (in black: group "")."""
    if panel.styles is None:
        return [(series.label, series.style, series.group) for series in panel.series]
    measured = [series for series in panel.series if series.style != GOAL]
    entries = [(group, SOLID, group) for group in dict.fromkeys(series.group for series in measured)]
    entries += [(name, style, "") for style, name in zip((DOTTED, SOLID), panel.styles, strict=True)]
    return entries + [(series.label, GOAL, series.group) for series in panel.series if series.style == GOAL]


def draw(plot: Plot, path: Path) -> Path:
    """Draw `plot` into a PNG at `path` (matplotlib's Agg canvas, DPI dots per inch)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullFormatter
    from matplotlib.transforms import offset_copy

    def line_style(style: str, colour: str) -> dict[str, Any]:
        if style == GOAL:
            return {"linestyle": "--", "color": "0.45", "linewidth": 1.2}
        dotted = style == DOTTED
        return {"linestyle": ":" if dotted else "-", "marker": "o" if dotted else "s", "markersize": 4, "color": colour}

    legends = [legend_of(panel) for panel in plot.panels]
    below = max((len(legend) for legend in legends if len(legend) > LEGEND_INSIDE_MAX), default=0)
    width = SINGLE_PANEL_WIDTH if len(plot.panels) == 1 else PANEL_SIZE[0] * len(plot.panels)
    figure = Figure(figsize=(width, PANEL_SIZE[1] + LEGEND_LINE_HEIGHT * below), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    figure.suptitle(plot.title)
    groups = [g for panel in plot.panels for g in dict.fromkeys(s.group for s in panel.series if s.style != GOAL)]
    colours = {group: f"C{index % 10}" for index, group in enumerate(dict.fromkeys(groups))}
    colours[""] = "black"
    all_axes = figure.subplots(1, len(plot.panels), squeeze=False)[0]
    for axes, panel, legend in zip(all_axes, plot.panels, legends, strict=True):
        for series in panel.series:
            axes.plot(series.x, series.y, **line_style(series.style, colours.get(series.group, "0.45")))
        axes.set_title(panel.title, fontsize="medium")
        axes.set_xlabel(panel.xlabel)
        axes.set_ylabel(panel.ylabel)
        if panel.log_x:
            # Ticks at the measured N (10, 100, 1,000), written out, instead of powers of ten.
            axes.set_xscale("log")
            sizes = sorted({x for series in panel.series if series.style != GOAL for x in series.x})
            axes.xaxis.set_major_locator(FixedLocator(sizes))
            axes.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,.0f}"))
            axes.xaxis.set_minor_formatter(NullFormatter())
        if panel.log_y:
            axes.set_yscale("log")
        else:
            axes.set_ylim(bottom=0)
        if panel.integer_x:
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(True, which="major", alpha=0.3)
        handles = [Line2D([], [], **line_style(style, colours.get(group, "0.45"))) for _, style, group in legend]
        labels = [label for label, _, _ in legend]
        if len(legend) > LEGEND_INSIDE_MAX:
            # Under the panel, below its x label (the offset is in points, whatever the panel's height).
            anchor = offset_copy(axes.transAxes, figure, y=-34, units="points")
            axes.legend(
                handles, labels, fontsize="small", loc="upper center", bbox_to_anchor=(0.5, 0), bbox_transform=anchor
            )
        else:
            axes.legend(handles, labels, fontsize="small")
    path.parent.mkdir(parents=True, exist_ok=True)
    # No "Software" entry: the committed images then change only with what they show.
    figure.savefig(path, format="png", metadata={"Software": None})
    return path


def plot_scale_vs_n(results: Sequence[dict[str, Any]], path: Path) -> Path:
    return draw(scale_vs_n(results), path)


def plot_bytes_read(results: Sequence[dict[str, Any]], path: Path) -> Path:
    return draw(bytes_read(results), path)


def plot_several_triggerers(results: Sequence[dict[str, Any]], path: Path) -> Path:
    return draw(several_triggerers(results), path)


def draw_all(results: Sequence[dict[str, Any]], folder: Path) -> list[Path]:
    """Draw into `folder` every plot the results support; say on stdout what was drawn and what was skipped."""
    drawn = []
    for file_name, make in PLOTS.items():
        try:
            plot = make(results)
        except MissingData as missing:
            print(f"skipped {file_name}: {missing}")
            continue
        for note in plot.notes:
            print(f"{file_name}: {note}")
        drawn.append(draw(plot, folder / file_name))
        print(f"wrote {drawn[-1]}")
    return drawn


def load(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """The results of each ``latest.json``, in the order given."""
    results: list[dict[str, Any]] = []
    for path in paths:
        results += json.loads(Path(path).read_text())["results"]
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.plots", description=__doc__.split("\n")[0])
    parser.add_argument("results", nargs="+", type=Path, help="latest.json files written by benchmarks.scale")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"where the PNGs go (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    drawn = draw_all(load(args.results), args.out)
    return 0 if drawn else 1


if __name__ == "__main__":
    raise SystemExit(main())
