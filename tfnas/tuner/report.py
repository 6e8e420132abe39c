"""The search report: every trial, the Pareto front, its hypervolume, the best trial."""

from __future__ import annotations

import json
from pathlib import Path

from tfnas.objectives import Constraints, hypervolume, pareto_front
from tfnas.objectives.pareto import front_2d as _staircase

__all__ = [
    "PARETO_OBJECTIVES",
    "REPORT_FIELDS",
    "build_report",
    "write_report",
    "plot_pareto",
    "front_2d",
]

PARETO_OBJECTIVES = (
    ("int8_accuracy", "max"),
    ("arena_bytes", "min"),
    ("flash_bytes", "min"),
    ("macs", "min"),
)
REPORT_FIELDS = (
    "val_accuracy", "int8_accuracy", "planned_bytes", "persistent_bytes", "arena_bytes",
    "min_arena_bytes", "flash_bytes", "weights_bytes", "macs", "params", "latency_ms", "seconds",
    "train_seconds", "convert_seconds", "measure_seconds", "score", "epochs",
)  # fmt: skip


def _row(trial, metrics: dict) -> dict:
    row = {"trial_id": trial.trial_id, "status": str(trial.status).lower(),
           "genome": json.loads(trial.hyperparameters.values.get("genome", "null"))}  # fmt: skip
    for key in REPORT_FIELDS:
        if key in metrics:
            value = metrics[key]
            row[key] = int(value) if key.endswith(("_bytes", "macs", "params")) else float(value)
    if "feasible" in metrics:
        row["feasible"] = bool(metrics["feasible"])
    values = trial.hyperparameters.values
    if "tuner/rung" in values:
        row["rung"] = int(values["tuner/rung"])
        row["parent"] = values.get("tuner/trial_id")
    if "tuner/data" in values:
        row["data_fraction"] = float(values["tuner/data"])
    return row


def build_report(oracle, target: str) -> dict:
    """The report of an oracle's search, in the contract of DESIGN.md §2."""
    rows = []
    proxies = getattr(oracle, "proxies", {})
    workers = {t for runs in getattr(oracle, "assignments", {}).values() for t in runs}
    distributed = bool(workers - {"tuner0"})
    for trial_id in oracle.start_order:
        trial = oracle.trials[trial_id]
        row = _row(trial, oracle.trial_metrics(trial))
        if row["genome"] is not None and proxies:
            from tfnas.genome import Genome

            scored = proxies.get(Genome.from_dict(row["genome"]).canonical_hash())
            if scored:
                kappa = scored["ntk_cond"]
                row["ntk_cond"] = kappa if kappa != float("inf") else None  # None: singular NTK
                row["regions"] = scored["regions"]
                if "width" in scored:  # scored before the width indicator: none
                    row["width"] = int(scored["width"])
        runs = getattr(oracle, "assignments", {}).get(trial_id)
        if runs and distributed:  # which worker ran it (more than one: its lease ran out once)
            row["worker"], row["runs"] = runs[-1], len(runs)
        rows.append(row)
    done = [r for r in rows if r["status"] == "completed"]
    feasible = [r for r in done if r.get("feasible")]
    constraints: Constraints = oracle.constraints
    front = [feasible[i]["trial_id"] for i in pareto_front(feasible, PARETO_OBJECTIVES)]
    bounds = constraints.bounds()
    reference = {"int8_accuracy": 0.0}
    for key, _ in PARETO_OBJECTIVES[1:]:
        seen = [r[key] for r in done]
        reference[key] = float(bounds.get(key) or (1.1 * max(seen) if seen else 1.0))
    scales = {k: (1.0 if k == "int8_accuracy" else reference[k]) for k, _ in PARETO_OBJECTIVES}
    normalised = [{k: r[k] / scales[k] for k, _ in PARETO_OBJECTIVES} for r in feasible]
    hv = hypervolume(
        normalised, PARETO_OBJECTIVES, {k: reference[k] / scales[k] for k, _ in PARETO_OBJECTIVES}
    )
    # The best trial is the best feasible one: an infeasible trial is never the one to deploy.
    best = (
        min(feasible, key=lambda r: (r["score"], r["trial_id"]))["trial_id"] if feasible else None
    )
    rejected = [
        {"proposed_for": r["trial_id"], "status": "rejected", "genome": json.loads(r["genome"]),
         "estimate": r["estimate"], "violations": r["violations"]}
        for r in oracle.rejected
    ]  # fmt: skip
    return {
        "trials": rows,
        "rejected": rejected,
        "best": best,
        "pareto": front,
        "hypervolume": hv,
        "hypervolume_reference": reference,
        "constraints": constraints.to_dict(),
        "target": target,
        "latency_model": _latency_model(constraints),
        "strategy": type(oracle).__name__,
        "space": {"name": oracle.space.name, "config": oracle.space.get_config()},
    }


def _latency_model(constraints: Constraints) -> dict:
    """Which board, core, clock and kernels ``latency_ms`` was modelled for."""
    from tfnas.objectives.latency import kernels_for_target

    device = constraints.latency_device
    cal = constraints.latency_calibration
    model = "analytic model, not a measurement (docs/latency.md)"
    return {"device": device.name, "core": device.core, "clock_mhz": device.clock_mhz,
            "kernels": kernels_for_target(constraints.target),
            "model": f"{model}; {cal.describe()}" if cal is not None else model,
            "calibration": None if cal is None else {"board": cal.board, "fitted": list(cal.fitted),
                                                     "coefficients": cal.coefficients}}  # fmt: skip


def write_report(report: dict, path: str | Path) -> None:
    """Write ``report`` as JSON atomically (a kill never leaves half a file).

    One top-level key per line and one trial (or rejected candidate) per line:
    readable, and written by json's C encoder (``indent`` would force the
    pure-Python one, which took 0.4 s for 200 trials, rewritten after each).
    """
    path = Path(path)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(_dumps(report))
    tmp.replace(path)


def _dumps(report: dict) -> str:
    fields = []
    for key, value in report.items():
        if isinstance(value, list) and value:
            text = "[\n  " + ",\n  ".join(json.dumps(v) for v in value) + "\n ]"
        else:
            text = json.dumps(value)
        fields.append(f" {json.dumps(key)}: {text}")
    return "{\n" + ",\n".join(fields) + "\n}\n"


def front_2d(rows: list[dict], key: str) -> list[dict]:
    """The rows on the 2-D front of int8 accuracy (max) against ``key`` (min), by ``key``.

    A row is on it when no other row has at most its ``key`` and a higher
    accuracy; walking by increasing ``key``, accuracy strictly increases.
    """
    return _staircase(rows, lambda r: r[key], lambda r: r["int8_accuracy"], lambda r: r["trial_id"])


_VIEWS = (("arena_bytes", "max_arena_bytes", "TFLM arena bytes"),
          ("flash_bytes", "max_flash_bytes", "flash bytes"),
          ("macs", "max_macs", "MACs"))  # fmt: skip


def plot_pareto(report: dict, path: str | Path) -> None:
    """int8 accuracy against arena, flash and MACs, one panel each, with the fronts marked.

    In each panel: infeasible trials grey, feasible ones blue, the 2-D front
    of accuracy against that resource (feasible trials) as a red step line,
    and the other members of the report's 4-objective front as hollow red
    circles. The bound, where set, is a dashed line.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import EngFormatter

    done = [r for r in report["trials"] if r["status"] == "completed"]
    feasible = [r for r in done if r.get("feasible")]
    pareto = set(report["pareto"])
    constraints = report["constraints"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharey=True)
    for ax, (key, bound_key, label) in zip(axes, _VIEWS, strict=True):
        for rows, colour, name in ((feasible, "tab:blue", "feasible"),
                                   ([r for r in done if not r.get("feasible")], "tab:grey", "infeasible")):  # fmt: skip
            if rows:
                ax.scatter([r[key] for r in rows], [r["int8_accuracy"] for r in rows], c=colour,
                           s=16, label=name, zorder=2)  # fmt: skip
        line = front_2d(feasible, key)
        if line:
            xs = [r[key] for r in line]
            ys = [r["int8_accuracy"] for r in line]
            ax.step(xs, ys, where="post", c="tab:red", lw=1.5, zorder=3)
            ax.scatter(xs, ys, c="tab:red", s=28, zorder=4, label=f"front: accuracy vs {label}")
        on_line = {r["trial_id"] for r in line}
        others = [r for r in feasible if r["trial_id"] in pareto and r["trial_id"] not in on_line]
        if others:
            ax.scatter([r[key] for r in others], [r["int8_accuracy"] for r in others], s=46,
                       facecolors="none", edgecolors="tab:red", zorder=4,
                       label="other 4-objective front members")  # fmt: skip
        bound = constraints.get(bound_key)
        if bound and (key != "arena_bytes" or constraints.get("arena") == "total"):
            ax.axvline(bound, ls="--", c="k", lw=1, label="bound")
        suffix = f" ({report['target']})" if key == "arena_bytes" else ""
        ax.set_xlabel(label + suffix)
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))  # 5k, 100k, 1.2M
        ax.legend(fontsize=7, loc="lower right")
    axes[0].set_ylabel("int8 accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
