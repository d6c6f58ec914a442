"""The benchmark's plots (benchmarks/plots.py): which numbers go on which axis, and the PNGs drawn from them.

Needs matplotlib (the `bench` extra, installed by ./scripts/bootstrap through `test`); skipped without it, as in
./scripts/test-lowest's environment, which does not install it.
"""

from __future__ import annotations

import json
import re
import struct
import tempfile
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("matplotlib")

from benchmarks import plots, report, scale  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def result(
    n: int,
    mode: str = "shared",
    *,
    p50: float | None = 7.5,
    p95: float | None = 11.0,
    calls: int = 120,
    downloaded: int | None = 180_000_000,
    logged: int | None = 90_000_000,
    k: int | None = 1,
    quotas: str | None = "strictest",
    conditions: str = "volume",
) -> dict[str, Any]:
    """A row as benchmarks.metrics.summarize writes it (the fields the plots read, and a few beside them).
    `k=None`: a row from before several triggerers, without a `triggerers` list."""
    row = {
        "n": n,
        "mode": mode,
        "wrong_outcomes": 0,
        "failed_reads": 0,
        "filter_calls": calls,
        "throttled": 3,
        "calls_per_invocation": calls / n,
        "latency_p50": p50,
        "latency_p95": p95,
        "latency_max": None if p95 is None else p95 + 5,
        "bytes_downloaded": downloaded,
        "bytes_logged": logged,
        "conditions": conditions,
        "quota_profile": quotas,
        "writer": "direct",
    }
    if k is not None:
        row["triggerers"] = [{"triggers": n // k, "latency_p95": p95, "bytes_read": None} for _ in range(k)]
    return row


def by_label(panel: plots.Panel) -> dict[str, tuple[list[float], list[float]]]:
    return {series.label: (list(series.x), list(series.y)) for series in panel.series}


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path.name} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


SWEEP = [
    result(10, "shared", p50=6.0, p95=8.0, calls=20),
    result(100, "shared", p50=6.5, p95=9.0, calls=40),
    result(1000, "shared", p50=7.4, p95=10.6, calls=131),
    result(1000, "per_trigger", p50=30.0, p95=90.0, calls=9000),
    result(10, "per_trigger", p50=5.0, p95=7.0, calls=0),
    result(100, "per_trigger", p50=6.0, p95=None, calls=1300),
    # Runs of several triggerers are for the plot against K, not this one.
    result(2000, "shared", p50=7.9, p95=14.1, calls=274, k=2),
]


def test_scale_vs_n_puts_latency_left_and_calls_right_a_line_per_mode_in_order_of_n() -> None:
    plot = plots.scale_vs_n(SWEEP)
    latency, calls = plot.panels
    assert by_label(latency) == {
        "shared p50": ([10, 100, 1000], [6.0, 6.5, 7.4]),
        "shared p95": ([10, 100, 1000], [8.0, 9.0, 10.6]),
        "per_trigger p50": ([10, 100, 1000], [5.0, 6.0, 30.0]),
        # A run without a p95 (no decisive line seen) leaves its point out.
        "per_trigger p95": ([10, 1000], [7.0, 90.0]),
        "goal: p95 < 15 s": ([10, 1000], [15.0, 15.0]),
    }
    # Calls on a logarithmic axis: a run of 0 calls is left out. The N / 5 goal is issue 9's (volume conditions).
    assert by_label(calls) == {
        "shared": ([10, 100, 1000], [20, 40, 131]),
        "per_trigger": ([100, 1000], [1300, 9000]),
        "goal (volume): N / 5": ([10, 1000], [2.0, 200.0]),
    }
    assert calls.log_y and calls.log_x and latency.log_x and not latency.log_y
    assert [series.style for series in latency.series[:2]] == [plots.DOTTED, plots.SOLID]
    assert latency.series[-1].style == plots.GOAL
    assert "volume conditions, strictest quotas" in plot.title
    assert plot.notes == ()


def test_scale_vs_n_names_the_setting_of_each_line_when_results_of_several_are_given() -> None:
    today = [result(n, quotas=None, conditions="today", k=None, p95=float(n)) for n in (10, 100)]
    plot = plots.scale_vs_n(SWEEP[:3] + today)
    latency, calls = plot.panels
    assert by_label(latency)["shared (today conditions, the conditions' quotas) p95"] == ([10, 100], [10.0, 100.0])
    assert by_label(latency)["shared (volume conditions, strictest quotas) p95"] == ([10, 100, 1000], [8, 9, 10.6])
    assert "(" not in plot.title  # no one setting to name there


def test_bytes_read_is_read_over_logged_per_mode_and_per_k_when_several_ran() -> None:
    rows = [
        result(10, downloaded=300, logged=100),
        result(100, downloaded=2_500, logged=1_000),
        result(100, "per_trigger", downloaded=9_000, logged=1_000),
        result(200, downloaded=4_400, logged=2_000, k=2),
        result(1000, logged=0),  # nothing logged: no ratio
    ]
    (panel,) = plots.bytes_read(rows).panels
    assert by_label(panel) == {
        "shared, K = 1": ([10, 100], [3.0, 2.5]),
        "shared, K = 2": ([200], [2.2]),
        "per_trigger, K = 1": ([100], [9.0]),
        "goal (volume): 2x": ([10, 200], [2.0, 2.0]),
    }
    # Without runs of several triggerers, K is not named; without volume runs, no goal line.
    (panel,) = plots.bytes_read([result(n, conditions="today", downloaded=n * 15, logged=n) for n in (10, 100)]).panels
    assert by_label(panel) == {"shared": ([10, 100], [15.0, 15.0])}


SITTING = [
    result(1000, p95=10.6, calls=131, k=1, quotas="strictest"),
    result(2000, p95=14.1, calls=274, k=2, quotas="strictest"),
    result(3000, p95=18.1, calls=420, k=3, quotas="strictest"),
    result(1000, p95=10.4, calls=127, k=1, quotas="most"),
    result(2000, p95=12.5, calls=257, k=2, quotas="most"),
    result(3000, p95=11.9, calls=397, k=3, quotas="most"),
]


def test_several_triggerers_against_k_a_line_per_quota_profile_with_the_goals() -> None:
    plot = plots.several_triggerers(SITTING)
    latency, calls = plot.panels
    assert by_label(latency) == {
        "most quotas": ([1, 2, 3], [10.4, 12.5, 11.9]),
        "strictest quotas": ([1, 2, 3], [10.6, 14.1, 18.1]),
        "goal: p95 < 15 s": ([1, 2, 3], [15.0, 15.0, 15.0]),
    }
    # N is the whole run's (K x 1,000 here): the goal is N / 5 at each K.
    assert by_label(calls) == {
        "most quotas": ([1, 2, 3], [127, 257, 397]),
        "strictest quotas": ([1, 2, 3], [131, 274, 420]),
        "goal: N / 5": ([1, 2, 3], [200.0, 400.0, 600.0]),
    }
    assert [series.style for series in calls.series] == [plots.SOLID, plots.SOLID, plots.GOAL]
    assert latency.xlabel == "K (triggerers), 1,000 invocations each"
    assert latency.integer_x and not latency.log_x
    assert plot.title == "Several triggerers (shared mode, volume conditions)"


def test_k_is_the_length_of_the_triggerers_list_and_one_without_it() -> None:
    assert plots.triggerers_of(result(10, k=3)) == 3
    assert plots.triggerers_of(result(10, k=None)) == 1
    assert plots.triggerers_of(result(10) | {"triggerers": []}) == 1


def test_several_triggerers_leaves_out_lines_that_ran_at_one_k_only() -> None:
    # A per_trigger run of one triggerer beside the sitting says nothing against K.
    plot = plots.several_triggerers([*SITTING[:3], result(1000, "per_trigger", calls=9000)])
    latency, calls = plot.panels
    assert set(by_label(calls)) == {"strictest quotas", "goal: N / 5"}


def test_the_same_point_given_twice_keeps_the_later_and_says_so() -> None:
    again = result(3000, p95=21.9, calls=391, k=3, quotas="strictest")
    plot = plots.several_triggerers([*SITTING, again])
    latency, _ = plot.panels
    assert by_label(latency)["strictest quotas"] == ([1, 2, 3], [10.6, 14.1, 21.9])
    assert any("strictest quotas at 3 given twice; kept the later (21.9, not 18.1)" in note for note in plot.notes)
    plot = plots.scale_vs_n([*SWEEP, result(1000, "shared", p50=7.4, p95=12.0, calls=131)])
    assert plot.notes == ("latency p95: shared at 1000 given twice; kept the later (12, not 10.6)",)


@pytest.mark.parametrize(
    ("make", "rows", "why"),
    [
        (plots.scale_vs_n, [result(1000), result(1000, "per_trigger")], "two N or more; found N = [1000]"),
        (plots.scale_vs_n, [result(1000, k=2), result(2000, k=2)], "found N = none"),
        (plots.bytes_read, [result(10, logged=None), result(100, downloaded=None)], "found N = none"),
        (plots.several_triggerers, [result(10), result(100)], "two K (triggerers) or more; found K = [1]"),
        (plots.several_triggerers, [], "found K = none"),
    ],
)
def test_a_plot_without_its_data_says_what_is_missing(make, rows, why) -> None:
    with pytest.raises(plots.MissingData, match=re.escape(why)):
        make(rows)


def test_the_legend_names_each_mode_once_and_p50_p95_once() -> None:
    latency, calls = plots.scale_vs_n(SWEEP).panels
    assert [label for label, _, _ in plots.legend_of(latency)] == [
        "shared",
        "per_trigger",
        "p50",
        "p95",
        "goal: p95 < 15 s",
    ]
    assert [label for label, _, _ in plots.legend_of(calls)] == ["shared", "per_trigger", "goal (volume): N / 5"]


def test_draw_all_writes_the_three_pngs_small_and_readable(tmp_path: Path, capsys) -> None:
    drawn = plots.draw_all(SWEEP + SITTING, tmp_path / "images")
    names = [path.name for path in drawn]
    assert names == [plots.SCALE_VS_N, plots.BYTES_READ, plots.SEVERAL_TRIGGERERS]
    for path in drawn:
        width, height = png_size(path)
        # About 100 dpi: two panels are 1,000 pixels wide, one 650; no taller than a page's half.
        assert 600 <= width <= 1000 and 350 <= height <= 700, (path.name, width, height)
        assert path.stat().st_size < 150_000
    out = capsys.readouterr().out
    assert f"wrote {tmp_path / 'images' / plots.SCALE_VS_N}" in out


def test_draw_all_skips_what_the_results_do_not_support_and_says_so(tmp_path: Path, capsys) -> None:
    drawn = plots.draw_all(SITTING, tmp_path)
    assert [path.name for path in drawn] == [plots.BYTES_READ, plots.SEVERAL_TRIGGERERS]
    assert not (tmp_path / plots.SCALE_VS_N).exists()
    assert "skipped scale-vs-n.png: needs runs of one triggerer at two N or more; found N = [1000]" in (
        capsys.readouterr().out
    )


def write_results(path: Path, results: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"settings": {"conditions": "volume", "triggerers": [1]}, "results": results}))
    return path


def test_the_command_reads_several_results_files(tmp_path: Path, capsys) -> None:
    first = write_results(tmp_path / "a.json", SITTING[:3])
    second = write_results(tmp_path / "b.json", SITTING[3:])
    assert plots.main([str(first), str(second), "--out", str(tmp_path / "out")]) == 0
    latency, _ = plots.several_triggerers(plots.load([first, second])).panels
    assert set(by_label(latency)) == {"most quotas", "strictest quotas", "goal: p95 < 15 s"}
    assert png_size(tmp_path / "out" / plots.SEVERAL_TRIGGERERS)
    # Nothing to draw: exit status 1.
    assert plots.main([str(write_results(tmp_path / "c.json", [result(10)])), "--out", str(tmp_path / "x")]) == 1
    assert not (tmp_path / "x").exists()


def test_the_benchmark_draws_the_plots_of_its_own_run_after_it(tmp_path: Path, monkeypatch) -> None:
    runs = {(1000, "shared"): SWEEP[2], (10, "shared"): SWEEP[0], (1000, "per_trigger"): SWEEP[3]}
    runs |= {(10, "per_trigger"): SWEEP[4]}
    # The snapshot of the code, removed after each run.
    monkeypatch.setattr(scale, "snapshot_code", lambda: (Path(tempfile.mkdtemp(dir=tmp_path)), "package"))
    monkeypatch.setattr(scale, "git_commit", lambda: "abc1234")
    monkeypatch.setattr(scale, "make_plan", lambda n, shape, seed: n)
    monkeypatch.setattr(scale, "run_one", lambda plan, mode, *args, **kwargs: runs[(plan, mode)])
    monkeypatch.setattr(report, "row", lambda result: "")
    monkeypatch.setattr(report, "markdown", lambda results, settings: "")
    saved: list[list[dict[str, Any]]] = []
    monkeypatch.setattr(report, "save", lambda results, settings, folder: saved.append(list(results)))
    drawn: list[tuple[list[dict[str, Any]], Path]] = []
    draw_all = plots.draw_all
    monkeypatch.setattr(plots, "draw_all", lambda results, folder: drawn.append((results, folder)) or None)

    scale.main(["--sizes", "10,1000", "--modes", "shared,per_trigger", "--plots", str(tmp_path / "plots")])
    assert drawn == [(saved[-1], tmp_path / "plots")]
    assert len(saved[-1]) == 4
    # Without --plots, nothing is drawn.
    scale.main(["--sizes", "10,1000", "--modes", "shared,per_trigger"])
    assert len(drawn) == 1
    # What it would have drawn from that run:
    assert [path.name for path in draw_all(saved[-1], tmp_path / "plots")] == [plots.SCALE_VS_N, plots.BYTES_READ]
