"""Results of the replay study: JSON summaries, and the tables and charts made from them.

Everything printed or written goes through :func:`summarize_result`, whose output is plain
JSON; the markdown of ``docs/REPRODUCTION.md`` is rendered from the saved JSON
(:mod:`replay.reproduction`), so the document and the data cannot disagree.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from scipy.stats import t as student_t

from replay.paired import against_best, all_pairs, paired_difference
from replay.runner import Result
from replay.streams import segment_bounds

LABELS = {
    "naive": "naive",
    "validation": "validation-based",
    "ab_test": "A/B testing",
    "epsilon_greedy": "epsilon-greedy",
    "ucb1": "UCB1",
    "thompson": "Thompson sampling",
    "discounted_thompson": "discounted Thompson*",
    "sw_ucb": "sliding-window UCB*",
}
#: Horizons of the sweep, as shares of the stream's chunks.
HORIZON_SHARES = (0.1, 0.25, 0.5, 1.0)


def label(strategy: str) -> str:
    return LABELS.get(strategy, strategy)


def horizons(n_chunks: int) -> list[int]:
    return sorted({max(2, round(share * n_chunks)) for share in HORIZON_SHARES})


def horizon_regret(result: Result, horizon: int) -> dict[str, list[float]]:
    """Per strategy and seed: regret per chunk over the first ``horizon`` chunks against the
    best fixed model in hindsight *of those chunks* (a stream that ended there)."""
    regret: dict[str, list[float]] = {}
    for strategy, runs in result.runs.items():
        values = []
        for run, rewards, sizes in zip(runs, result.model_rewards, result.chunk_sizes, strict=True):
            best = int(np.argmax(rewards[:, :horizon] @ sizes[:horizon]))
            values.append(float(np.sum(rewards[best, :horizon] - run.rewards[:horizon]) / horizon))
        regret[strategy] = values
    return regret


def segment_best(result: Result) -> list[list[str]]:
    """Per seed, the best model in hindsight of each segment (before and after the change)."""
    best = []
    for rewards, sizes, change in zip(result.model_rewards, result.chunk_sizes, result.change_chunks, strict=True):
        bounds = segment_bounds(change, result.n_chunks)
        best.append([result.model_names[int(np.argmax(rewards[:, a:b] @ sizes[a:b]))] for a, b in bounds])
    return best


def _interval(values: Sequence[float], confidence: float = 0.95) -> dict[str, float]:
    x = np.asarray(values, dtype=float)
    mean = float(x.mean())
    if x.size < 2:
        return {"mean": mean, "lower": math.nan, "upper": math.nan}
    half = float(student_t.ppf(0.5 + confidence / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return {"mean": mean, "lower": mean - half, "upper": mean + half}


def summarize_result(result: Result) -> dict[str, Any]:
    """Everything the tables and the documentation show about one result, as plain JSON."""
    mean_rewards = {s: [row["mean_reward"] for row in rows] for s, rows in result.rows.items()}
    paired = len(result.seeds) >= 2
    sweep = horizons(result.n_chunks)
    return {
        "dataset": result.name,
        "scenario": result.scenario,
        "routing": result.routing,
        "rollback": result.rollback,
        "synthetic": result.synthetic,
        "drift_note": result.drift_note,
        "change_chunk": result.change_chunk,
        "chunks": result.n_chunks,
        "seeds": len(result.seeds),
        "models": list(result.model_names),
        "naive_models": {result.model_names[m]: n for m, n in sorted(Counter(result.naive_models).items())},
        "broken_models": {
            result.model_names[m]: n for m, n in sorted(Counter(b[0] for b in result.broken if b).items())
        },
        "segment_best": segment_best(result),
        "table": result.table(),
        "versus_best": [_difference(d) for d in against_best(mean_rewards)] if paired else [],
        "pairs": [_difference(d) for d in all_pairs(mean_rewards)] if paired else [],
        "horizon": {
            "chunks": sweep,
            "regret_per_chunk": {
                strategy: [_interval(horizon_regret(result, h)[strategy]) for h in sweep] for strategy in result.runs
            },
        },
        "per_seed": result.rows,
        "seed0": {
            s: {"arms": runs[0].arms.tolist(), "rollbacks": runs[0].rollbacks} for s, runs in result.runs.items()
        },
    }


def _difference(d: Any) -> dict[str, Any]:
    return {**vars(d), "significant": d.significant}


def comparisons(summaries: Sequence[Mapping[str, Any]], field: str, first: str, second: str) -> list[dict[str, Any]]:
    """Each strategy under ``field == first`` minus under ``field == second``, paired by seed.

    ``field`` is ``"routing"`` or ``"rollback"``; the other settings (dataset, scenario and
    the other field) must match, so both sides ran on the same streams with the same seeds.
    """
    other = {"routing": "rollback", "rollback": "routing"}[field]
    index = {(s["dataset"], s["scenario"], s[other], s[field]): s for s in summaries}
    groups = []
    for (dataset, scenario, setting, value), left in index.items():
        right = index.get((dataset, scenario, setting, second))
        if value != first or right is None or left["seeds"] < 2:
            continue
        rows = []
        for strategy, seeds_left in left["per_seed"].items():
            a = [row["mean_reward"] for row in seeds_left]
            b = [row["mean_reward"] for row in right["per_seed"][strategy]]
            difference = paired_difference(a, b, (f"{strategy} ({first})", f"{strategy} ({second})"))
            rows.append({"strategy": strategy, "first": float(np.mean(a)), "second": float(np.mean(b))})
            rows[-1]["difference"] = _difference(difference)
        groups.append(
            {"dataset": dataset, "scenario": scenario, other: setting, "field": field, "first": first}
            | {"second": second, "rows": rows}
        )
    return groups


def standard_comparisons(
    summaries: Sequence[Mapping[str, Any]], routings: Sequence[str], rollbacks: Sequence[str]
) -> list[dict[str, Any]]:
    """Request- vs chunk-level routing (under the first rollback mode), then the first
    rollback mode vs each other one (under every routing), all paired by seed."""
    groups = []
    if {"request", "chunk"} <= set(routings):
        routing = comparisons(summaries, "routing", "request", "chunk")
        groups += [g for g in routing if g["rollback"] == rollbacks[0]]
    for other in rollbacks[1:]:
        groups += comparisons(summaries, "rollback", rollbacks[0], other)
    return groups


def comparison_heading(group: Mapping[str, Any]) -> str:
    if group["field"] == "routing":
        setting = f"rollback: {group['rollback']}"
        what = "request- minus chunk-level routing"
    else:
        setting = f"{group['routing']}-level routing"
        what = f"rollback {group['first']} minus rollback {group['second']}"
    return f"{group['dataset']}, {group['scenario']} scenario, {setting}: {what}"


def to_json(results: Sequence[Result], settings: Mapping[str, Any]) -> dict[str, Any]:
    return {"settings": dict(settings), "results": [summarize_result(r) for r in results]}


# --------------------------------------------------------------------------- markdown
def heading(summary: Mapping[str, Any]) -> str:
    name = summary["dataset"]
    synthetic = " — SYNTHETIC data" if summary["synthetic"] else ""
    change = summary["change_chunk"]
    where = f" at chunk {change}" if change is not None else ""
    return (
        f"{name}{synthetic}, {summary['scenario']} scenario{where}, {summary['routing']}-level routing "
        f"(rollback: {summary['rollback']}; {summary['seeds']} seeds, {summary['chunks']} chunks)"
    )


def _signed(value: float, digits: int = 4) -> str:
    return f"+{value:.{digits}f}" if value >= 0 else f"−{abs(value):.{digits}f}"


def digits(summary: Mapping[str, Any]) -> int:
    """Decimals that show the differences: fraud rewards sit near 0.999 (a request costs little)."""
    return 5 if "cost" in summary["table"][0] else 4


def markdown_table(summary: Mapping[str, Any]) -> str:
    """One row per strategy: means over seeds, and the paired difference from the best."""
    rows = summary["table"]
    fraud = "cost" in rows[0]
    fault = "broken_served" in rows[0]
    versus = {d["first"]: d for d in summary["versus_best"]}
    n = digits(summary)
    columns = ["strategy", "mean reward", "minus the best's (95 % CI)", "regret: fixed", "segment", "chunk"]
    columns += ["F1", "cost"] if fraud else ["accuracy", "F1"]
    columns += ["switches", "rollbacks"]
    columns += ["broken served", "caught", "false alarms"] if fault else []
    columns += ["best-model share"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        difference = versus.get(row["strategy"])
        if difference is None:
            versus_text = "best" if versus else "–"
        else:
            star = " *" if difference["significant"] else ""
            low, high = _signed(difference["lower"], n), _signed(difference["upper"], n)
            versus_text = f"{_signed(difference['mean'], n)} ({low} … {high}){star}"
        cells = [label(row["strategy"]), f"{row['mean_reward']:.{n}f}", versus_text]
        cells += [f"{row[f'regret_{name}']:.{n - 2}f}" for name in ("fixed", "segment", "chunk")]
        cells += [f"{row['f1']:.3f}", f"{row['cost']:.0f}"] if fraud else [f"{row['accuracy']:.4f}", f"{row['f1']:.3f}"]
        cells += [f"{row['switches']:.1f}", f"{row['rollbacks']:.2f}"]
        if fault:
            cells += [f"{row['broken_served']:.0f}", f"{row['broken_rolled_back']:.0%}", f"{row['false_alarms']:.2f}"]
        cells += [f"{row['best_model_share']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def horizon_table(summary: Mapping[str, Any]) -> str:
    """Regret per chunk against the best fixed model of the first h chunks, with 95 % intervals."""
    sweep = summary["horizon"]
    n = digits(summary)
    columns = ["strategy", *[f"first {h} chunks" for h in sweep["chunks"]]]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for strategy, cells in sweep["regret_per_chunk"].items():
        texts = [
            f"{_signed(c['mean'], n)}"
            if math.isnan(c["lower"])
            else f"{_signed(c['mean'], n)} ({_signed(c['lower'], n)} … {_signed(c['upper'], n)})"
            for c in cells
        ]
        lines.append("| " + " | ".join([label(strategy), *texts]) + " |")
    return "\n".join(lines)


def comparison_table(group: Mapping[str, Any]) -> str:
    """Means under both settings and their paired difference, one row per strategy."""
    n = 5 if group["dataset"].startswith("fraud") else 4
    first, second = group["first"], group["second"]
    lines = [
        f"| strategy | {first} | {second} | {first} minus {second} (95 % CI) |",
        "|---|---|---|---|",
    ]
    for row in group["rows"]:
        d = row["difference"]
        star = " *" if d["significant"] else ""
        interval = f"{_signed(d['mean'], n)} ({_signed(d['lower'], n)} … {_signed(d['upper'], n)}){star}"
        lines.append(f"| {label(row['strategy'])} | {row['first']:.{n}f} | {row['second']:.{n}f} | {interval} |")
    return "\n".join(lines)


def notes(summary: Mapping[str, Any]) -> str:
    """Which model naive shipped and which model broke, in how many seeds."""
    parts = ["Naive shipped (seeds): " + ", ".join(f"{m} {n}" for m, n in summary["naive_models"].items())]
    if summary["broken_models"]:
        parts.append("the broken model (seeds): " + ", ".join(f"{m} {n}" for m, n in summary["broken_models"].items()))
    return "; ".join(parts) + "."


def text_table(markdown: str) -> str:
    """A markdown table, aligned for the terminal."""
    lines = markdown.splitlines()
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines if not line.startswith("|---")]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]

    def align(row: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))

    return "\n".join(align(row) for row in cells)


# --------------------------------------------------------------------------- charts
def figures(result: Result) -> dict[str, go.Figure]:
    """Cumulative regret against the best fixed model, reward per chunk, model served (seed 0)."""
    chunks = np.arange(result.n_chunks)
    title = heading(summarize_header(result))
    regret = go.Figure(layout={"title": f"{title}<br>cumulative regret against the best fixed model (mean over seeds)"})
    for strategy, runs in result.runs.items():
        curves = []
        for run, rewards, sizes in zip(runs, result.model_rewards, result.chunk_sizes, strict=True):
            best = int(np.argmax(rewards @ sizes))
            curves.append(np.cumsum(rewards[best] - run.rewards))
        regret.add_trace(go.Scatter(x=chunks, y=np.mean(curves, axis=0), mode="lines", name=label(strategy)))
    per_chunk = go.Figure(layout={"title": f"{title}<br>reward per chunk (mean over seeds)"})
    for k, name in enumerate(result.model_names):
        mean = np.mean([rewards[k] for rewards in result.model_rewards], axis=0)
        per_chunk.add_trace(go.Scatter(x=chunks, y=mean, mode="lines", name=f"model: {name}", line={"dash": "dot"}))
    for strategy, runs in result.runs.items():
        mean = np.mean([run.rewards for run in runs], axis=0)
        per_chunk.add_trace(go.Scatter(x=chunks, y=mean, mode="lines", name=label(strategy)))
    timeline = _timeline(result, title)
    change = result.change_chunk
    for figure in (regret, per_chunk, timeline):
        if change is not None:
            figure.add_vline(x=change - 0.5, line_dash="dash", line_color="#b91c1c", annotation_text=result.scenario)
        figure.update_xaxes(title_text="chunk")
    return {"regret": regret, "per_chunk": per_chunk, "timeline": timeline, "horizon": horizon_figure(result, title)}


def horizon_figure(result: Result, title: str) -> go.Figure:
    """Regret per chunk against the best fixed model of the first h chunks, for h in steps of
    a tenth of the stream, with 95 % intervals over seeds."""
    steps = sorted({max(2, round(result.n_chunks * k / 10)) for k in range(1, 11)})
    figure = go.Figure(
        layout={"title": f"{title}<br>horizon sweep: regret per chunk over the first h chunks (95 % intervals)"}
    )
    for strategy in result.runs:
        cells = [_interval(horizon_regret(result, h)[strategy]) for h in steps]
        mean = [c["mean"] for c in cells]
        figure.add_trace(
            go.Scatter(
                x=steps,
                y=mean,
                mode="lines+markers",
                name=label(strategy),
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [c["upper"] - c["mean"] for c in cells],
                    "arrayminus": [c["mean"] - c["lower"] for c in cells],
                },
            )
        )
    figure.update_xaxes(title_text="horizon h (chunks)")
    figure.update_yaxes(title_text="regret per chunk")
    return figure


def summarize_header(result: Result) -> dict[str, Any]:
    return {
        "dataset": result.name,
        "synthetic": result.synthetic,
        "scenario": result.scenario,
        "routing": result.routing,
        "rollback": result.rollback,
        "change_chunk": result.change_chunk,
        "seeds": len(result.seeds),
        "chunks": result.n_chunks,
    }


def _timeline(result: Result, title: str) -> go.Figure:
    strategies = list(result.runs)
    timeline = make_subplots(
        rows=len(strategies),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.01,
        subplot_titles=[label(s) for s in strategies],
    )
    chunks = np.arange(result.n_chunks)
    for row, strategy in enumerate(strategies, start=1):
        run = result.runs[strategy][0]
        names = [result.model_names[a] for a in run.arms]
        timeline.add_trace(
            go.Scatter(x=chunks, y=names, mode="markers", marker={"size": 5}, showlegend=False), row=row, col=1
        )
        for chunk, model, rule in run.rollbacks:
            timeline.add_trace(
                go.Scatter(
                    x=[chunk],
                    y=[result.model_names[model]],
                    mode="markers",
                    showlegend=False,
                    marker={"symbol": "x", "size": 11, "color": "#b91c1c"},
                    name=f"rollback ({rule})",
                ),
                row=row,
                col=1,
            )
    timeline.update_layout(
        title=f"{title}<br>model serving most requests per chunk (seed 0; × = rollback)", height=170 * len(strategies)
    )
    return timeline


def write_html(results: Sequence[Result], path: Path, settings: Mapping[str, Any]) -> None:
    """A standalone HTML report (Plotly.js inlined: it opens offline)."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>mabdash replay study</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:24px;max-width:1400px}"
        "table{border-collapse:collapse}td,th{padding:4px 8px;border-bottom:1px solid #ddd;text-align:right}"
        "td:first-child,th:first-child{text-align:left}</style></head><body>",
        "<h1>mabdash replay study</h1>",
        f"<p>Settings: <code>{json.dumps(dict(settings), default=str)}</code>. Strategies marked * are drift-aware "
        "variants, not in the paper.</p>",
    ]
    include = True
    for result in results:
        summary = summarize_result(result)
        parts.append(f"<h2>{heading(summary)}</h2><p>Stream: {summary['drift_note']}. {notes(summary)}</p>")
        parts.append(_html_table(markdown_table(summary)))
        for name, figure in figures(result).items():
            div = f"{result.name.split(' ')[0]}-{result.scenario}-{result.routing}-{name.replace('_', '-')}"
            parts.append(figure.to_html(full_html=False, include_plotlyjs=include, div_id=div))
            include = False
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")


def _html_table(markdown: str) -> str:
    lines = markdown.splitlines()
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = ["<tr>" + "".join(f"<th>{c}</th>" for c in head) + "</tr>"]
    for line in lines[2:]:
        rows.append("<tr>" + "".join(f"<td>{c.strip()}</td>" for c in line.strip("|").split("|")) + "</tr>")
    return "<table>" + "".join(rows) + "</table>"


def counterfactual_table(rows: list[dict[str, Any]]) -> str:
    """The off-policy check for the terminal: estimate vs truth and coverage over seeds."""
    header = (
        f"{'alternative':<22}{'method':>8}{'estimate':>10}{'truth':>10}{'on-policy, all requests':>26}{'covered':>9}"
    )
    lines = [header]
    for row in rows:
        estimate = "—" if row["estimate"] is None else f"{row['estimate']:.4f}"
        full = "" if row["full_horizon"] is None else f"{row['full_horizon']:.4f}"
        lines.append(
            f"{row['target']:<28}{row['method']:>8}{estimate:>10}{row['truth']:>10.4f}{full:>26}{row['covered']:>9.0%}"
        )
    return "\n".join(lines)
