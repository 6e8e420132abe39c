"""Inspect a ``.tflite`` model: TFLM arena, flash, MACs and parameters.

``tfnas inspect MODEL.tflite [--json] [--target T] [--reorder OUT] [--plot PNG]``
runs :func:`main`; Python code calls :func:`inspect`.

Examples
--------
>>> report = inspect("model.tflite", target="cortex-m")  # doctest: +SKIP
>>> report["arena_bytes"], report["min_arena_bytes"]  # doctest: +SKIP
(3908, 3920)
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tfnas.errors import FlatbufferError, TfnasError, UnsupportedModelError
from tfnas.memory.arena import MemoryPlan, plan_memory
from tfnas.memory.targets import TARGETS
from tfnas.tflite.model import Model, Operator, Subgraph, read_model

__all__ = [
    "inspect",
    "format_table",
    "plot_memory",
    "main",
    "model_macs",
    "model_params",
    "op_macs",
]

logger = logging.getLogger("tfnas")

_WEIGHTED = frozenset(
    {
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "FULLY_CONNECTED",
        "TRANSPOSE_CONV",
        "SVDF",
        "UNIDIRECTIONAL_SEQUENCE_LSTM",
        "BATCH_MATMUL",
        "PRELU",
    }
)


def op_macs(sg: Subgraph, op: Operator) -> int:
    """Multiply-accumulates of one operator (one multiply-add is one MAC)."""

    def shape(pos: int, outputs: bool = False) -> tuple[int, ...]:
        idx = (op.outputs if outputs else op.inputs)[pos : pos + 1]
        return sg.tensors[idx[0]].shape if idx and idx[0] >= 0 else ()

    out = shape(0, outputs=True)
    w = shape(1)
    if op.opcode == "CONV_2D" and len(w) == 4:
        return math.prod(out) * w[1] * w[2] * w[3]
    if op.opcode == "DEPTHWISE_CONV_2D" and len(w) == 4:
        return math.prod(out) * w[1] * w[2]
    if op.opcode == "TRANSPOSE_CONV" and len(w) == 4:
        return math.prod(shape(2)) * w[0] * w[1] * w[2]
    if op.opcode == "FULLY_CONNECTED" and len(w) == 2:
        return math.prod(out) * w[1]
    if op.opcode == "BATCH_MATMUL" and out and len(shape(0)) >= 2:
        return math.prod(out) * shape(0)[-1]
    if op.opcode == "SVDF" and len(w) == 2:
        return math.prod(shape(0)[:1] or (1,)) * (w[0] * w[1] + math.prod(shape(2)))
    if op.opcode == "UNIDIRECTIONAL_SEQUENCE_LSTM":
        return sum(math.prod(shape(i)) for i in range(1, 9)) * math.prod(out[:-1] or (1,))
    return 0


def model_macs(model: Model) -> int:
    """Multiply-accumulates of one inference of subgraph 0 (plus called subgraphs)."""
    return sum(op_macs(sg, op) for sg in model.subgraphs for op in sg.operators)


def model_params(model: Model) -> int:
    """Elements of constant tensors feeding weighted operators (weights and biases)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for sg in model.subgraphs:
        for op in sg.operators:
            if op.opcode not in _WEIGHTED:
                continue
            for t in op.inputs[1:]:
                if t >= 0 and sg.tensors[t].is_constant and (sg.index, t) not in seen:
                    seen.add((sg.index, t))
                    total += sg.tensors[t].num_elements
    return total


def _ops(model: Model, order: Sequence[int]) -> list[dict[str, Any]]:
    sg = model.main
    rows = []
    for i in order:
        op = sg.operators[i]
        row: dict[str, Any] = {
            "index": op.index,
            "opcode": op.opcode,
            "inputs": list(op.inputs),
            "outputs": list(op.outputs),
        }
        if op.custom_code is not None:
            row["custom_code"] = op.custom_code
        rows.append(row)
    return rows


def inspect(
    tflite_bytes_or_path: bytes | str | os.PathLike | Model,
    target: str = "host",
    order: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Report what a model costs on a TFLM target.

    Parameters
    ----------
    tflite_bytes_or_path : bytes, path-like or Model
        The ``.tflite`` model.
    target : {"host", "cortex-m", "cortex-m-cmsis"}
        The TFLM build to model.
    order : sequence of int, optional
        An execution order for subgraph 0 (the file's by default).

    Returns
    -------
    dict
        JSON-ready: ``planned_bytes``, ``persistent_bytes``, ``arena_bytes``,
        ``min_arena_bytes``, ``exact`` and ``reasons`` (when a kernel is not
        modelled, ``exact`` is False and ``min_arena_bytes`` is a safe upper
        bound), ``flash_bytes``, ``weights_bytes``, ``macs``,
        ``params``, ``ops``, ``peak_op``, ``target``, ``buffers``,
        ``timeline`` and ``subgraphs``.

    Raises
    ------
    FlatbufferError
        If the input is not a valid ``.tflite`` flatbuffer.
    UnsupportedModelError
        If TFLM would refuse the model on ``target``.
    ValueError
        If ``target`` is unknown.
    """
    model = read_model(tflite_bytes_or_path)
    plan = plan_memory(model, target, order)
    peak_op = plan.order[plan.peak_op] if plan.peak_op >= 0 else -1
    return {
        "target": plan.target,
        "planned_bytes": plan.planned_bytes,
        "persistent_bytes": plan.persistent_bytes,
        "arena_bytes": plan.arena_bytes,
        "min_arena_bytes": plan.min_arena_bytes,
        "exact": plan.exact,
        "reasons": list(plan.reasons),
        "flash_bytes": model.size,
        "weights_bytes": model.weights_bytes,
        "macs": model_macs(model),
        "params": model_params(model),
        "subgraphs": len(model.subgraphs),
        "peak_op": peak_op,
        "ops": _ops(model, plan.order),
        "timeline": list(plan.timeline),
        "buffers": [
            {
                "kind": b.kind,
                "tensor": b.tensor,
                "op": b.op,
                "size": b.size,
                "first": b.first,
                "last": b.last,
                "offset": b.offset,
            }
            for b in plan.buffers
        ],
    }


_PER_TARGET = ("planned_bytes", "persistent_bytes", "arena_bytes", "min_arena_bytes", "exact")


def format_table(report: Mapping[str, Any], default_target: bool = False) -> str:
    """Render an :func:`inspect` report as a readable text table.

    With ``report["targets"]`` (``tfnas inspect --target all``) the arena rows
    show every target side by side.
    """
    if "targets" in report:
        names = list(report["targets"])
        per = report["targets"]
        upper = (
            ""
            if all(per[n].get("exact", True) for n in names)
            else " (upper bound where not exact)"
        )

        def cell(n: str, key: str) -> str:
            return f"{'refused':>14}" if "refused" in per[n] else f"{per[n][key]:>14,}"

        rows = [
            ("target", "  ".join(f"{n:>14}" for n in names)),
            *(
                (label, "  ".join(cell(n, key) for n in names) + (upper if key == "min_arena_bytes" else ""))
                for label, key in (("planned (head) bytes", "planned_bytes"),
                                   ("persistent (tail) bytes", "persistent_bytes"),
                                   ("arena bytes (head + tail)", "arena_bytes"),
                                   ("smallest working arena", "min_arena_bytes"))
            ),
        ]  # fmt: skip
    else:
        note = (" (the default; use --target cortex-m or cortex-m-cmsis for a microcontroller, "
                "--target all for all three)") if default_target else ""  # fmt: skip
        rows = [
            ("target", report["target"] + note),
            ("planned (head) bytes", f"{report['planned_bytes']:,}"),
            ("persistent (tail) bytes", f"{report['persistent_bytes']:,}"),
            ("arena bytes (head + tail)", f"{report['arena_bytes']:,}"),
            (
                "smallest working arena",
                f"{report['min_arena_bytes']:,}"
                + ("" if report.get("exact", True) else " (upper bound: not exact, see below)"),
            ),
        ]
    rows += [
        ("flash bytes", f"{report['flash_bytes']:,}"),
        ("weights bytes", f"{report['weights_bytes']:,}"),
        ("MACs", f"{report['macs']:,}"),
        ("params", f"{report['params']:,}"),
        ("operators", str(len(report["ops"]))),
        (
            "peak at operator",
            str(report["peak_op"]) + (f" ({report['target']})" if "targets" in report else ""),
        ),
    ]
    if "reorder" in report:
        r = report["reorder"]
        rows.append(("reordered planned bytes", f"{r['planned_bytes']:,} (exact: {r['exact']})"))
    width = max(len(k) for k, _ in rows)
    lines = [f"{k.ljust(width)}  {v}" for k, v in rows]
    if not report.get("exact", True):
        lines.append("")
        lines.append("not exact: these allocations are not modelled (bounded above):")
        lines.extend(f"  - {why}" for why in report.get("reasons", []))
    timeline = report.get("timeline", [])
    lines.append("")
    lines.append(f"{'step':>4}  {'operator':<28} {'live bytes':>12}")
    for pos, op in enumerate(report["ops"]):
        live = timeline[pos + 1] if pos + 1 < len(timeline) else 0
        mark = "  <- peak" if op["index"] == report["peak_op"] else ""
        name = f"{op['index']}:{op['opcode']}"
        lines.append(f"{pos:>4}  {name:<28} {live:>12,}{mark}")
    return "\n".join(lines)


def plot_memory(report_or_plan: Mapping[str, Any] | MemoryPlan, path: str | os.PathLike) -> None:
    """Draw the arena over the operator timeline and save it to ``path``.

    The top panel shows every planned buffer at its offset while it is live;
    the bottom one the live bytes and the number of live buffers per step,
    with the peak marked. Matplotlib is imported here, with the Agg backend.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.patches import Rectangle

    if isinstance(report_or_plan, MemoryPlan):
        buffers = [
            {k: getattr(b, k) for k in ("kind", "size", "first", "last", "offset")}
            for b in report_or_plan.buffers
        ]
        timeline = list(report_or_plan.timeline)
        head = report_or_plan.planned_bytes
    else:
        buffers = list(report_or_plan["buffers"])
        timeline = list(report_or_plan.get("timeline", []))
        head = report_or_plan["planned_bytes"]
    steps = max([len(timeline) - 1, *(b["last"] for b in buffers)] or [0])
    counts = [sum(1 for b in buffers if b["first"] <= s <= b["last"]) for s in range(steps + 1)]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for b in buffers:
        color = "tab:orange" if b["kind"] == "scratch" else "tab:blue"
        ax1.add_patch(
            Rectangle(
                (b["first"] - 0.4, b["offset"]),
                b["last"] - b["first"] + 0.8,
                b["size"],
                facecolor=color,
                edgecolor="black",
                linewidth=0.3,
                alpha=0.7,
            )
        )
    ax1.set_xlim(-1, steps + 1)
    ax1.set_ylim(0, max(head, 1) * 1.05)
    ax1.axhline(head, color="red", linestyle="--", linewidth=1, label=f"planned {head:,} B")
    ax1.set_ylabel("arena offset (bytes)")
    ax1.legend(loc="upper right")
    ax2.step(range(len(timeline)), timeline, where="mid", color="tab:blue", label="live bytes")
    if timeline:
        peak = max(range(len(timeline)), key=timeline.__getitem__)
        ax2.axvline(peak, color="red", linestyle="--", linewidth=1)
        ax2.annotate(f"peak {timeline[peak]:,} B", (peak, timeline[peak]), color="red")
    ax2.set_ylabel("live bytes")
    ax2.set_xlabel("step (0: inputs, k: operator k - 1)")
    twin = ax2.twinx()
    twin.plot(range(len(counts)), counts, color="tab:green", linewidth=0.8, label="live buffers")
    twin.set_ylabel("live buffers")
    fig.tight_layout()
    fig.savefig(os.fspath(path), dpi=100)
    plt.close(fig)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit code 2
        self.exit(2, f"tfnas inspect: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="tfnas inspect", description="TFLM arena, flash and compute of a model.")
    p.add_argument("model", help="path to a .tflite file")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--target", choices=[*sorted(TARGETS), "all"],
                   help="TFLM build whose rules apply (default host; 'all': the three side by side)")  # fmt: skip
    p.add_argument("--reorder", metavar="OUT.tflite", help="write the best operator order")
    p.add_argument("--plot", metavar="FILE.png", help="save a memory plot")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tfnas inspect``; returns the exit code.

    Exit codes: 0 on success, 2 for unreadable or malformed input (one line on
    stderr), 1 when TFLM would refuse the model on the target.
    """
    args = _parser().parse_args(argv)
    target = "host" if args.target in (None, "all") else args.target
    try:
        data = read_model(Path(args.model))
        report = inspect(data, target=target)
        if args.target == "all":
            report["targets"] = {}
            for name in sorted(TARGETS):
                try:
                    other = report if name == target else inspect(data, target=name)
                except UnsupportedModelError as exc:  # e.g. int16x8 per-channel FC with CMSIS-NN
                    report["targets"][name] = {"refused": _one_line(exc)}
                    continue
                report["targets"][name] = {key: other[key] for key in _PER_TARGET}
        if args.reorder:
            from tfnas.memory.reorder import best_order
            from tfnas.tflite.writer import reorder_operators

            found = best_order(data, target=target)
            Path(args.reorder).write_bytes(reorder_operators(data, found.order))
            report["reorder"] = {
                "path": str(args.reorder),
                "order": list(found.order),
                "planned_bytes": found.planned_bytes,
                "original_planned_bytes": found.original_planned_bytes,
                "exact": found.exact,
            }
        if args.plot:
            plot_memory(report, args.plot)
    except UnsupportedModelError as exc:
        print(f"tfnas inspect: unsupported model: {_one_line(exc)}", file=sys.stderr)
        return 1
    except (FlatbufferError, OSError, ValueError, TfnasError) as exc:
        print(f"tfnas inspect: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # never a traceback for bad input
        logger.debug("inspect failed", exc_info=True)
        print(f"tfnas inspect: error: {type(exc).__name__}: {_one_line(exc)}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report))
    else:
        print(format_table(report, default_target=args.target is None))
    return 0


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:500] if text else type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
