"""Results of the replay study as a text table, JSON and a standalone HTML report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from replay.paired import against_best, all_pairs
from replay.study import DatasetResult

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


def title(result: DatasetResult) -> str:
    return f"{result.name}{' — SYNTHETIC data' if result.synthetic and 'synthetic' not in result.name else ''}"


def text_table(result: DatasetResult) -> str:
    """The per-dataset table for the terminal: the markdown table, aligned."""
    lines = markdown_table(result).splitlines()
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines if not line.startswith("|---")]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]

    def align(row: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))

    return "\n".join(align(row) for row in cells)


def markdown_table(result: DatasetResult) -> str:
    fraud = "cost" in next(iter(result.rows.values()))[0]
    columns = ["strategy", "cumulative reward", "mean reward ± std", "regret", "accuracy", "F1", "precision", "recall"]
    columns += ["cost"] if fraud else []
    columns += ["switches", "rollbacks", "best-model share"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in result.table():
        cells = [
            LABELS.get(row["strategy"], row["strategy"]),
            f"{row['cumulative_reward']:.3f}",
            f"{row['mean_reward']:.4f} ± {row['mean_reward_std']:.4f}",
            f"{row['regret']:.3f}",
            f"{row['accuracy']:.4f}",
            f"{row['f1']:.3f}",
            f"{row['precision']:.3f}",
            f"{row['recall']:.3f}",
        ]
        cells += [f"{row['cost']:.0f}"] if fraud else []
        cells += [f"{row['switches']:.1f}", f"{row['rollbacks']:.1f}", f"{row['best_model_share']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def mean_rewards(result: DatasetResult) -> dict[str, list[float]]:
    """Each strategy's mean reward per seed (paired by seed: the same stream)."""
    return {strategy: [row["mean_reward"] for row in rows] for strategy, rows in result.rows.items()}


def paired_text(result: DatasetResult) -> str:
    """Each strategy minus the best one, paired over seeds, with its 95 % interval."""
    if len(next(iter(result.rows.values()))) < 2:
        return "(one seed: no paired intervals; run with --seeds 2 or more)"
    lines = []
    for difference in against_best(mean_rewards(result)):
        name = LABELS.get(difference.first, difference.first)
        lines.append(f"  {name:<28} {difference.text()}")
    best = LABELS.get(against_best(mean_rewards(result))[0].second, "")
    return f"mean reward minus {best}'s, paired over seeds (95 % interval; * excludes 0):\n" + "\n".join(lines)


def to_json(results: list[DatasetResult], settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "settings": settings,
        "datasets": [
            {
                "name": r.name,
                "synthetic": r.synthetic,
                "drift": r.drift_note,
                "drift_chunk": r.drift_chunk,
                "chunks": r.n_chunks,
                "models": list(r.model_names),
                "table": r.table(),
                "per_seed": {s: rows for s, rows in r.rows.items()},
                "arms_seed0": {s: runs[0].arms.tolist() for s, runs in r.runs.items()},
                "rollbacks_seed0": {s: runs[0].rollbacks for s, runs in r.runs.items()},
                "paired_mean_reward": [{**vars(d), "significant": d.significant} for d in all_pairs(mean_rewards(r))]
                if len(next(iter(r.rows.values()))) > 1
                else [],
            }
            for r in results
        ],
    }


def figures(result: DatasetResult) -> dict[str, go.Figure]:
    """Cumulative reward per strategy, arm-selection timeline (seed 0), per-chunk reward."""
    chunks = np.arange(result.n_chunks)
    drift = result.drift_chunk
    cumulative = go.Figure(layout={"title": f"{title(result)}: cumulative reward (mean over seeds)"})
    for strategy, runs in result.runs.items():
        mean = np.mean([np.cumsum(run.rewards) for run in runs], axis=0)
        cumulative.add_trace(go.Scatter(x=chunks, y=mean, mode="lines", name=LABELS.get(strategy, strategy)))
    per_chunk = go.Figure(layout={"title": f"{title(result)}: reward per chunk (mean over seeds)"})
    for k, name in enumerate(result.model_names):
        mean = np.mean([rewards[k] for rewards in result.model_rewards], axis=0)
        per_chunk.add_trace(go.Scatter(x=chunks, y=mean, mode="lines", name=f"model: {name}", line={"dash": "dot"}))
    for strategy, runs in result.runs.items():
        mean = np.mean([run.rewards for run in runs], axis=0)
        per_chunk.add_trace(go.Scatter(x=chunks, y=mean, mode="lines", name=LABELS.get(strategy, strategy)))
    strategies = list(result.runs)
    timeline = make_subplots(
        rows=len(strategies),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.01,
        subplot_titles=[LABELS.get(s, s) for s in strategies],
    )
    for row, strategy in enumerate(strategies, start=1):
        run = result.runs[strategy][0]
        timeline.add_trace(
            go.Scatter(
                x=chunks,
                y=[result.model_names[a] for a in run.arms],
                mode="markers",
                marker={"size": 5},
                name=LABELS.get(strategy, strategy),
                showlegend=False,
            ),
            row=row,
            col=1,
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
        title=f"{title(result)}: model served per chunk (seed 0; × = rollback)", height=170 * len(strategies)
    )
    for figure in (cumulative, per_chunk, timeline):
        if drift is not None:
            figure.add_vline(x=drift - 0.5, line_dash="dash", line_color="#b91c1c", annotation_text="drift")
        figure.update_xaxes(title_text="chunk")
    return {"cumulative": cumulative, "timeline": timeline, "per_chunk": per_chunk}


def write_html(results: list[DatasetResult], path: Path, settings: dict[str, Any]) -> None:
    """A standalone HTML report (Plotly.js inlined: it opens offline)."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>mabdash replay study</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:24px;max-width:1400px}"
        "table{border-collapse:collapse}td,th{padding:4px 8px;border-bottom:1px solid #ddd;text-align:right}"
        "td:first-child,th:first-child{text-align:left}</style></head><body>",
        "<h1>mabdash replay study</h1>",
        f"<p>Settings: <code>{json.dumps(settings)}</code>. Strategies marked * are drift-aware variants, "
        "not in the paper.</p>",
    ]
    include = True
    for result in results:
        parts.append(
            f"<h2>{title(result)}</h2><p>Drift: {result.drift_note}"
            f"{f' (chunk {result.drift_chunk})' if result.drift_chunk is not None else ''}.</p>"
        )
        parts.append(_html_table(result))
        for figure in figures(result).values():
            parts.append(figure.to_html(full_html=False, include_plotlyjs=include))
            include = False
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")


def _html_table(result: DatasetResult) -> str:
    lines = markdown_table(result).splitlines()
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
