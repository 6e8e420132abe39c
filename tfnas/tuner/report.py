"""The search report: every trial, the Pareto front, its hypervolume, the best trial."""

from __future__ import annotations

import json
from pathlib import Path

from tfnas.objectives import Constraints, hypervolume, pareto_front

__all__ = ["PARETO_OBJECTIVES", "REPORT_FIELDS", "build_report", "write_report", "plot_pareto"]

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
    return {"device": device.name, "core": device.core, "clock_mhz": device.clock_mhz,
            "kernels": kernels_for_target(constraints.target),
            "model": "analytic model, not a measurement (docs/latency.md)"}  # fmt: skip


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


def plot_pareto(report: dict, path: str | Path) -> None:
    """Scatter int8 accuracy against arena bytes; Pareto-front trials highlighted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in report["trials"] if r["status"] == "completed"]
    front = set(report["pareto"])
    fig, ax = plt.subplots(figsize=(6, 4))
    for feasible, colour, label in (
        (True, "tab:blue", "feasible"),
        (False, "tab:grey", "infeasible"),
    ):
        pts = [r for r in done if r.get("feasible") == feasible and r["trial_id"] not in front]
        ax.scatter(
            [r["arena_bytes"] for r in pts],
            [r["int8_accuracy"] for r in pts],
            c=colour,
            s=18,
            label=label,
        )
    pts = sorted((r for r in done if r["trial_id"] in front), key=lambda r: r["arena_bytes"])
    ax.plot(
        [r["arena_bytes"] for r in pts],
        [r["int8_accuracy"] for r in pts],
        "o-",
        c="tab:red",
        label="Pareto front",
    )
    bound = report["constraints"].get("max_arena_bytes")
    if bound and report["constraints"].get("arena") == "total":
        ax.axvline(bound, ls="--", c="k", lw=1, label="arena bound")
    ax.set_xlabel(f"TFLM arena bytes ({report['target']})")
    ax.set_ylabel("int8 accuracy")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
