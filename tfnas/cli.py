"""The ``tfnas`` command line (also ``python -m tfnas``).

Subcommands:

- ``tfnas search``: search under a device budget (see :mod:`tfnas.search`);
- ``tfnas family RUN_DIR``: the model family of an MSNAS run's meta-graph;
- ``tfnas precision RUN_DIR``: a run's Pareto models in six number formats (see :mod:`tfnas.precision`);
- ``tfnas inspect MODEL.tflite``: TFLM arena, flash, MACs (see :mod:`tfnas.inspection`);
- ``tfnas devices``: the board catalogue with the budget each gives a model;
- ``tfnas laws design``: sampling laws for windows of a cost range, saved as JSON;
- ``tfnas export MODEL.tflite --out DIR [--board ...]``: firmware sources for any model;
- ``tfnas latency calibrate|estimate|host``: fit the latency model to measurements, use it,
  or time a model with LiteRT on this machine;
- ``tfnas demo``: the pipeline on scikit-learn's 8x8 digits: sample a genome,
  print its analytic costs, build and train it, convert it to int8 and report
  the exact TFLM arena and the int8 accuracy.

This module and the displays are the only places that print.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument gives one line (``PROG: error: ...``) and exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _demo_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="tfnas demo", description=_demo.__doc__)
    p.add_argument("--space", choices=["msnas", "micro"], default="msnas")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--target", choices=["host", "cortex-m", "cortex-m-cmsis"], default="cortex-m")
    p.add_argument("--out", type=Path, default=Path("tfnas_runs/demo"))
    return p


def _demo(argv: Sequence[str]) -> int:
    """Sample a genome for 8x8 digits, train it, convert to int8 and measure it."""
    args = _demo_parser().parse_args(argv)
    from tfnas.data import load_digits
    from tfnas.genome import analyze, get_space

    data = load_digits(seed=args.seed)
    kwargs = (
        {"stages": 2, "nodes": 4, "channels": (16, 32)}
        if args.space == "msnas"
        else {"max_blocks": 4, "max_channels": 32}
    )
    space = get_space(args.space, data.input_shape, data.num_classes, **kwargs)
    genome = space.sample(args.seed)
    costs = analyze(genome)
    print(
        f"task      digits 8x8: {len(data.x_train)} train / {len(data.x_test)} test, {data.num_classes} classes"
    )
    print(f"genome    {genome.summary()}  hash {genome.canonical_hash()[:12]}")
    print(f"analytic  params {costs.params:,}  MACs {costs.macs:,}  "
          f"largest int8 tensor {costs.largest_tensor_bytes:,} B")  # fmt: skip

    from tfnas._tf import keras
    from tfnas.compress import evaluate_tflite, to_tflite
    from tfnas.inspection import inspect
    from tfnas.model import build_model

    model = build_model(genome, seed=args.seed)
    model.summary(print_fn=lambda line, **_: print("  " + line))
    start = time.perf_counter()
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(data.x_train, data.y_train, epochs=args.epochs, batch_size=32, verbose=0)
    _, float_acc = model.evaluate(data.x_test, data.y_test, verbose=0)
    trained = time.perf_counter() - start
    tflite = to_tflite(model, "int8", data.x_train, seed=args.seed)
    report = inspect(tflite, target=args.target)
    int8 = evaluate_tflite(
        tflite, data.x_test, data.y_test, reference=model.predict(data.x_test, verbose=0)
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "model.tflite").write_bytes(tflite)
    (args.out / "genome.json").write_text(genome.to_json(indent=2))
    (args.out / "inspect.json").write_text(json.dumps(report, indent=2))
    print(f"trained   {args.epochs} epochs in {trained:.1f} s: float accuracy {float_acc:.3f}")
    print(f"int8      accuracy {int8.accuracy:.3f}, agreement with float {int8.agreement:.3f}")
    print(f"TFLM      target {args.target}: planned {report['planned_bytes']:,} B + persistent "
          f"{report['persistent_bytes']:,} B = arena {report['arena_bytes']:,} B "
          f"(smallest working arena {report['min_arena_bytes']:,} B)")  # fmt: skip
    print(f"flash     {report['flash_bytes']:,} B; MACs in the flatbuffer {report['macs']:,}")
    print(f"wrote     {args.out}/model.tflite, genome.json, inspect.json")
    return 0


def _search_parser() -> argparse.ArgumentParser:
    from tfnas.search import SearchConfig

    d = SearchConfig()
    p = _Parser(
        prog="tfnas search",
        description="Search architectures under a device budget; rerun the same command to resume.",
    )
    p.add_argument("--config", type=Path, help="YAML or JSON file whose keys mirror these flags")
    p.add_argument(
        "--data", help="an .npz with x_train, y_train, x_test, y_test (default: 8x8 digits)"
    )
    p.add_argument("--space", choices=["micro", "msnas", "cell"],
                   help=f"search space (default {d.space}; cell: NAS-Bench-201 cells)")  # fmt: skip
    p.add_argument("--strategy", choices=["random", "evolution", "msnas", "micronas", "laws"],
                   help=f"(default {d.strategy}; msnas searches its own meta-graph; micronas ranks "
                   "zero-shot, prunes the cell supernet, then trains the best; laws trains samples "
                   "of sampling laws designed for windows of a MAC range)")  # fmt: skip
    p.add_argument("--laws", help="with --strategy laws: a laws file from `tfnas laws design` "
                   "(default: design laws at the start of the search)")  # fmt: skip
    p.add_argument("--proxy-pool", type=int, help="zero-shot pre-ranking: draw K screened candidates "
                   "per trial and train the best by the hybrid proxy (default 1: off)")  # fmt: skip
    p.add_argument("--min-epochs", type=int, help="successive halving: new candidates train this "
                   "many epochs; the best 1/eta continue from their weights up to --epochs")  # fmt: skip
    p.add_argument("--eta", type=int, help=f"successive halving rate (default {d.eta})")
    p.add_argument("--min-data", type=float, help="successive halving over the data too: new "
                   "candidates train on this fraction of the training set, each rung on eta times "
                   "more (default: all of it at every rung)")  # fmt: skip
    p.add_argument("--final-epochs", type=int, help="retrain the best feasible architectures on the "
                   "whole training split for N epochs; best.tflite is the final model")  # fmt: skip
    p.add_argument(
        "--final-top",
        type=int,
        help=f"architectures the final fit retrains (default {d.final_top})",
    )
    p.add_argument("--proxy-samples", type=int,
                   help="training samples per trial (default all; 5,000 for msnas)")  # fmt: skip
    p.add_argument("--max-trials", type=int, help=f"trained trials (default {d.max_trials})")
    p.add_argument("--epochs", type=int, help=f"training epochs per trial (default {d.epochs})")
    p.add_argument("--batch-size", type=int, help=f"(default {d.batch_size})")
    p.add_argument("--max-arena", type=int, help=f"arena bound in bytes (default {d.max_arena})")
    p.add_argument("--arena", choices=["planned", "total", "min"],
                   help=f"which arena the bound applies to (default {d.arena})")  # fmt: skip
    p.add_argument("--max-flash", type=int, help=f"flatbuffer bytes (default {d.max_flash})")
    p.add_argument("--max-weights", type=int, help="weight bytes")
    p.add_argument("--max-macs", type=int, help="multiply-accumulates")
    p.add_argument("--device", help="a board from the catalogue (sets arena, flash and target)")
    p.add_argument("--max-latency-ms", type=float, help="bound on the modelled int8 latency (ms) on "
                   "the --device board (docs/latency.md)")  # fmt: skip
    p.add_argument("--latency-calibration", help="a JSON from `tfnas latency calibrate`: the latency "
                   "model uses its fitted coefficients")  # fmt: skip
    p.add_argument("--headroom", type=_fraction_or_bytes,
                   help=f"RAM and flash kept for the application: a fraction in [0, 1) or whole "
                   f"bytes (default {d.headroom})")  # fmt: skip
    p.add_argument(
        "--target", choices=["host", "cortex-m", "cortex-m-cmsis"], help=f"(default {d.target})"
    )
    p.add_argument("--quantization", choices=["ptq", "qat"], help=f"(default {d.quantization})")
    p.add_argument(
        "--population", type=int, help="aging-evolution population (default max_trials/2)"
    )
    p.add_argument(
        "--sample", type=int, help="aging-evolution tournament size (default population/4)"
    )
    p.add_argument("--out", help=f"output folder (default {d.out})")
    p.add_argument("--seed", type=int, help=f"(default {d.seed})")
    p.add_argument("--workers", type=int, help="run the trials in N worker processes served by a "
                   "chief (keras-tuner's distributed search, on this machine; docs/search.md)")  # fmt: skip
    return p


def _fraction_or_bytes(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a fraction in [0, 1) or whole bytes. Received: {text!r}"
            ) from None


def _search(argv: Sequence[str]) -> int:
    """Search architectures under a device budget and write deployable outputs."""
    from tfnas.errors import InfeasibleModelError, TfnasError, TrialsFailedError
    from tfnas.search import SearchConfig, load_config, run_search

    args = _search_parser().parse_args(argv)
    try:
        settings = load_config(args.config) if args.config else {}
        flags = {
            k: v
            for k, v in vars(args).items()
            if k not in ("config", "workers", "laws") and v is not None
        }
        if args.laws is not None:
            flags["strategy_options"] = {**settings.get("strategy_options", {}), "laws": args.laws}
        config = SearchConfig(**{**settings, **flags})
        if args.workers is not None:
            from tfnas.search import check_config
            from tfnas.tuner.distributed import launch, role
            from tfnas.validation import check_int

            check_int("workers", args.workers, 1)
            check_config(config)
            if role() is not None:
                raise ValueError("--workers starts a chief and its workers itself. Expected no "
                                 "KERASTUNER_* variables with it. Received: KERASTUNER_ORACLE_IP set")  # fmt: skip
            rest = list(argv)
            at = rest.index("--workers") if "--workers" in rest else None
            if at is not None:
                del rest[at : at + 2]
            else:  # --workers=N
                rest = [a for a in rest if not a.startswith("--workers=")]
            return launch(rest, args.workers)
        report = run_search(config)
    except (InfeasibleModelError, TrialsFailedError) as e:  # the search ran and could not go on
        print(f"tfnas search: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    except (TfnasError, ValueError, OSError, KeyError) as e:
        print(f"tfnas search: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tfnas search: interrupted; completed trials are kept, run the same command to resume",
              file=sys.stderr)  # fmt: skip
        return 130
    if report.get("role") == "worker":
        return 0
    best = next((r for r in report["trials"] if r["trial_id"] == report["best"]), None)
    final = report.get("final", {})
    chosen = next((f for f in final.get("fits", []) if f["trial_id"] == final.get("best")), None)
    if best:
        print(f"best trial {best['trial_id']}: int8 accuracy {best['int8_accuracy']:.3f}, arena "
              f"{best['arena_bytes']:,} B, flash {best['flash_bytes']:,} B, feasible {best['feasible']}")  # fmt: skip
    if chosen:
        print(f"final fit of trial {chosen['trial_id']} ({final['settings']['epochs']} epochs): int8 accuracy "
              f"{chosen['search_int8_accuracy']:.3f} -> {chosen['int8_accuracy']:.3f}, arena "
              f"{int(chosen['arena_bytes']):,} B, feasible {chosen['feasible']}; best.tflite is this model")  # fmt: skip
    written = report.get("written", [])
    if written:
        folder = str(Path(written[0]).parent)
        print(f"wrote {folder}/" + ", ".join(Path(p).name for p in written))
    if not best:
        done = [r for r in report["trials"] if r["status"] == "completed"]
        failed = [r for r in report["trials"] if r["status"] != "completed"]
        print(f"tfnas search: no completed trial meets the constraints ({len(done)} completed, "
              f"{len(failed)} failed), so no best.tflite or C files were written; "
              f"see {Path(config.out) / 'report.json'}", file=sys.stderr)  # fmt: skip
        return 1
    return 0


def _family_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="tfnas family",
        description="Derive, train and measure the model family of an MSNAS run's meta-graph "
        "(structure-level pruning at each threshold, no further search).",
    )
    p.add_argument(
        "run_dir", type=Path, help="the --out folder of a `tfnas search --strategy msnas`"
    )
    p.add_argument("--thresholds", default="0.65,0.5,0.4,0.3",
                   help="comma-separated connection-weight thresholds (default 0.65,0.5,0.4,0.3)")  # fmt: skip
    p.add_argument("--data", help="an .npz for another task: transfer the meta-graph without "
                   "searching (default: the run's data)")  # fmt: skip
    p.add_argument("--epochs", type=int, help="training epochs per member (default: the run's)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--train-samples", type=int, help="train on a seeded subset of this size")
    p.add_argument("--target", choices=["host", "cortex-m", "cortex-m-cmsis"])
    p.add_argument("--device", help="also name the largest member that fits this board")
    p.add_argument("--out", type=Path, help="where family.csv and family.png go (default RUN_DIR)")
    return p


def _family(argv: Sequence[str]) -> int:
    """Train and measure an MSNAS family; print the table, write family.csv and family.png."""
    args = _family_parser().parse_args(argv)
    from tfnas.errors import TfnasError

    try:
        thresholds = [float(t) for t in args.thresholds.split(",") if t.strip()]
        path = args.run_dir / "metagraph.json"
        if not path.is_file():
            raise ValueError(f"{path} does not exist. Expected the output folder of "
                             f"`tfnas search --strategy msnas`. Received: {args.run_dir}")  # fmt: skip
        from tfnas.strategies import MetaGraph

        metagraph = MetaGraph.load(path)
        config_path = args.run_dir / "config.json"
        config = json.loads(config_path.read_text()) if config_path.is_file() else {}
        from tfnas.data import load_digits, load_npz

        source = args.data or config.get("data")
        data = load_npz(source) if source else load_digits(seed=config.get("seed", 0))
        if args.train_samples:
            data = data.subset(train=args.train_samples, seed=config.get("seed", 0))
        if (
            tuple(data.input_shape) != metagraph.input_shape
            or data.num_classes != metagraph.num_classes
        ):
            metagraph = metagraph.transfer(data.input_shape, data.num_classes)
            print(f"transfer: meta-graph applied to {data.name} {tuple(data.input_shape)}, "
                  f"{data.num_classes} classes, without search")  # fmt: skip
        from tfnas.tuner import format_family, train_family, write_family

        out = args.out or args.run_dir
        device = None
        if args.device:
            from tfnas.objectives import get_device

            device = get_device(args.device)
        target = args.target or (device.target if device else config.get("target", "cortex-m"))
        rows = train_family(
            metagraph, data, thresholds, epochs=args.epochs or config.get("epochs", 6),
            batch_size=args.batch_size or config.get("batch_size", 32), target=target,
            seed=config.get("seed", 0), out_dir=out / "family",
        )  # fmt: skip
        print(format_family(rows))
        written = write_family(rows, out)
        print("wrote " + ", ".join(str(p) for p in written))
        if args.device:
            members = metagraph.derive_family(thresholds)
            by_hash = {m.genome.canonical_hash(): r for m, r in zip(members, rows, strict=True)}
            member, _ = metagraph.fit_device(
                device, thresholds, measure=lambda g, _t: by_hash[g.canonical_hash()]
            )
            print(f"{device.name}: {member.name} (threshold {member.threshold:g}) is the largest "
                  f"member within {device.name}'s budget on {target}")  # fmt: skip
    except (TfnasError, ValueError, OSError, KeyError) as e:
        print(f"tfnas family: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    return 0


def _export(argv: Sequence[str]) -> int:
    """Write the firmware files for any .tflite: C array, op resolver, arena; a board program."""
    p = _Parser(prog="tfnas export", description="The C sources for a .tflite model (its bytes, "
                "an op resolver with exactly its operators, kTensorArenaSize from the memory model) "
                "and, with --board, a TFLM program for the board.")  # fmt: skip
    p.add_argument("model", help="a .tflite file")
    p.add_argument(
        "--out", required=True, help="folder to write into (for Arduino: the sketch folder)"
    )
    p.add_argument("--board", help="arduino (a sketch), stm32 (CMake project), generic (Makefile), "
                   "or a board from `tfnas devices` (its project kind, core and TFLM target)")  # fmt: skip
    p.add_argument("--target", choices=["host", "cortex-m", "cortex-m-cmsis"],
                   help="TFLM build the arena is sized for (default: the board's, else cortex-m)")  # fmt: skip
    p.add_argument("--headroom", type=int, default=0, help="extra arena bytes (default 0)")
    p.add_argument("--name", default="g_model", help="the C array's name (default g_model)")
    args = p.parse_args(argv)
    from tfnas.errors import TfnasError
    from tfnas.export.boards import BOARDS
    from tfnas.objectives import DEVICES
    from tfnas.validation import check_int, closest

    try:
        check_int("headroom", args.headroom, 0)
        template, device = None, None
        if args.board is not None:
            if args.board in BOARDS:
                template = args.board
            elif args.board in DEVICES:
                device = DEVICES[args.board]
                template = next((b for b in ("arduino", "stm32") if args.board.startswith(b)),
                                "generic")  # fmt: skip
            else:
                raise ValueError(
                    f"Unknown board. Expected one of {sorted(BOARDS)} or {sorted(DEVICES)}"
                    f"{closest(args.board, [*BOARDS, *DEVICES])}. Received: --board {args.board}"
                )
        device_target = device.target if device else None
        target = args.target or device_target or "cortex-m"
        from tfnas.export import write_c_files
        from tfnas.export.boards import render_board
        from tfnas.inspection import inspect

        model = Path(args.model)
        if not model.is_file():
            raise ValueError(
                f"{model} does not exist. Expected a .tflite file. Received: {args.model}"
            )
        report = inspect(
            model.read_bytes(), target=target
        )  # refuses a malformed or unsupported model
        if template:
            written = render_board(template, model.read_bytes(), args.out, name=args.name, target=target,
                                   arena_headroom_bytes=args.headroom,
                                   device=device.name if device else None)  # fmt: skip
        else:
            written = list(write_c_files(model.read_bytes(), args.out, name=args.name, target=target,
                                         arena_headroom_bytes=args.headroom))  # fmt: skip
    except (TfnasError, ValueError, OSError) as e:
        print(f"tfnas export: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    import re

    header = next(p for p in written if p.suffix == ".h").read_text()  # say what was written
    arena = int(re.search(r"constexpr int kTensorArenaSize = (\d+);", header).group(1))
    print(f"{model.name}: {len(report['ops'])} operators, flash {report['flash_bytes']:,} B, "
          f"kTensorArenaSize {arena:,} B on {target}")  # fmt: skip
    print(f"wrote {Path(args.out)}/" + ", ".join(p.name for p in written))
    return 0


def _devices(argv: Sequence[str]) -> int:
    """List the board catalogue: memory, core, clock, TFLM target and the default budget."""
    p = _Parser(prog="tfnas devices", description="The boards tfnas knows (use one with "
                "`tfnas search --device NAME`).")  # fmt: skip
    p.add_argument("--json", action="store_true", help="one JSON object per board")
    p.add_argument("--headroom", type=_fraction_or_bytes, default=0.25,
                   help="RAM and flash kept for the application, as in tfnas search (default 0.25)")  # fmt: skip
    args = p.parse_args(argv)
    from dataclasses import asdict

    from tfnas.objectives import DEVICES
    from tfnas.validation import check_headroom

    rows = []
    try:
        check_headroom(args.headroom)
        for device in DEVICES.values():
            budget = device.budget(ram_headroom=args.headroom, flash_headroom=args.headroom)
            rows.append({**asdict(device), "max_arena_bytes": budget.max_arena_bytes,
                         "max_flash_bytes": budget.max_flash_bytes})  # fmt: skip
    except ValueError as e:
        print(f"tfnas devices: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    head = (f"{'device':<26} {'MCU':<30} {'core':<11} {'MHz':>4} {'SRAM KiB':>9} {'flash KiB':>9}  "
            f"{'target':<15} {'arena bound B':>13} {'flash bound B':>13}")  # fmt: skip
    print(head)
    for r in rows:
        sram = f"{r['sram_bytes'] // 1024}" + (
            f" ({r['contiguous_sram_bytes'] // 1024})" if r["contiguous_sram_bytes"] else ""
        )
        print(f"{r['name']:<26} {r['mcu']:<30} {r['core']:<11} {r['clock_mhz']:>4} {sram:>9} "
              f"{r['flash_bytes'] // 1024:>9}  {r['target']:<15} {r['max_arena_bytes']:>13,} "
              f"{r['max_flash_bytes']:>13,}")  # fmt: skip
    print(f"bounds keep a headroom of {args.headroom} for the application; SRAM in parentheses: the "
          "largest contiguous block, which the arena must fit in")  # fmt: skip
    return 0


def _latency(argv: Sequence[str]) -> int:
    """``tfnas latency calibrate|estimate|host``: calibrate and use the latency model."""
    p = _Parser(prog="tfnas latency", description="Calibrate the latency model on a board's "
                "measurements, estimate a model's latency, or time it on this machine.")  # fmt: skip
    sub = p.add_subparsers(dest="action", required=True, parser_class=_Parser)
    c = sub.add_parser("calibrate", help="fit the latency model to measured latencies (CSV)",
                       description="Fit the latency model's coefficients to measured latencies by "
                       "non-negative least squares; print them and each measurement's "
                       "leave-one-out error, and write the calibration JSON. CSV columns: model "
                       "(a .tflite path relative to the CSV), board (tfnas devices), cycles or ms, "
                       "optionally kernels (optimized|reference).")  # fmt: skip
    c.add_argument("measurements", type=Path, help="the CSV of measurements")
    c.add_argument("--out", type=Path, help="the JSON to write (default: MEASUREMENTS with the "
                   "suffix .calibration.json)")  # fmt: skip
    c.add_argument("--coefficients", default="kinds", help="kinds (each kind measured, default), "
                   "groups (macs, bytes, overhead), scale, or a comma-separated list such as "
                   "conv,depthwise,overhead")  # fmt: skip
    e = sub.add_parser("estimate", help="the modelled latency of a .tflite",
                       description="The latency model's cycles and milliseconds for one inference "
                       "of a .tflite on a board (a model, not a measurement).")  # fmt: skip
    e.add_argument("model", type=Path)
    e.add_argument("--device", help="a board from tfnas devices (default: the calibration's board, "
                   "else arduino-nano-33-ble-sense)")  # fmt: skip
    e.add_argument("--kernels", choices=["optimized", "reference"],
                   help="(default: the calibration's, else optimized)")  # fmt: skip
    e.add_argument("--calibration", type=Path, help="a JSON from tfnas latency calibrate")
    e.add_argument("--json", action="store_true", help="print the estimate as JSON")
    h = sub.add_parser("host", help="time a .tflite with LiteRT on this machine (host time)",
                       description="The median wall time of N invokes of the model with LiteRT's "
                       "interpreter on this computer: a relative signal between models, not a "
                       "board's latency.")  # fmt: skip
    h.add_argument("model", type=Path)
    h.add_argument("--runs", type=int, default=50, help="timed invokes (default 50)")
    args = p.parse_args(argv)
    from tfnas.errors import TfnasError

    try:
        if args.action == "calibrate":
            return _latency_calibrate(args)
        if args.action == "estimate":
            return _latency_estimate(args)
        return _latency_host(args)
    except (TfnasError, ValueError, OSError) as err:
        print(f"tfnas latency {args.action}: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2


def _latency_calibrate(args) -> int:
    from tfnas.objectives.calibration import MODES, calibrate_csv, format_calibration

    fit = args.coefficients if args.coefficients in MODES else [
        n.strip() for n in args.coefficients.split(",") if n.strip()]  # fmt: skip
    out = args.out or args.measurements.with_suffix(".calibration.json")
    if out.is_dir():
        raise ValueError(f"--out must be a file path. Received: --out {out}, a folder")
    cal = calibrate_csv(args.measurements, fit)
    print(format_calibration(cal))
    cal.save(out)
    if out.is_file():
        print(f"wrote {out}")
    return 0


def _latency_estimate(args) -> int:
    from tfnas.objectives import estimate_latency, get_device
    from tfnas.objectives.calibration import LatencyCalibration
    from tfnas.objectives.latency import DEFAULT_LATENCY_DEVICE
    from tfnas.validation import check_choice

    cal = LatencyCalibration.load(args.calibration) if args.calibration else None
    if args.device is not None:
        from tfnas.objectives import DEVICES

        check_choice("--device", args.device, sorted(DEVICES))
    device = get_device(args.device or (cal.board if cal else DEFAULT_LATENCY_DEVICE))
    if not args.model.is_file():
        raise ValueError(
            f"{args.model} does not exist. Expected a .tflite file. Received: {args.model}"
        )
    kernels = args.kernels or (cal.kernels if cal else "optimized")
    est = estimate_latency(args.model.read_bytes(), device, kernels=kernels, calibration=cal)
    if args.json:
        print(json.dumps({**est.to_dict(), "calibration": None if cal is None else cal.describe()}))
        return 0
    how = cal.describe() if cal else "default coefficients (docs/latency.md)"
    print(f"{args.model.name} on {device.name} ({device.core}, {est.clock_mhz:g} MHz, {kernels} "
          f"kernels): {est.total_cycles:,.0f} cycles = {est.latency_ms:.3f} ms, modelled with {how}")  # fmt: skip
    return 0


def _latency_host(args) -> int:
    from tfnas.validation import check_int

    check_int("--runs", args.runs, 1)
    if not args.model.is_file():
        raise ValueError(
            f"{args.model} does not exist. Expected a .tflite file. Received: {args.model}"
        )
    from tfnas.objectives.host import time_on_host

    t = time_on_host(args.model.read_bytes(), runs=args.runs)
    print(f"{args.model.name}: host time (LiteRT on this machine, not a board) median "
          f"{t.median_ms:.4f} ms over {t.runs} invokes (min {t.min_ms:.4f}, max {t.max_ms:.4f})")  # fmt: skip
    return 0


def _laws_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="tfnas laws design", description="Design sampling laws (Scheidegger et al., "
                "NeurIPS 2019) for windows of a metric, without training, and save them as JSON "
                "for `tfnas search --strategy laws --laws FILE`.")  # fmt: skip
    p.add_argument(
        "action", choices=["design"], help="design: run the genetic algorithm per window"
    )
    p.add_argument("--space", choices=["micro", "msnas", "cell"], default="micro",
                   help="search space, with the same defaults as tfnas search (default micro)")  # fmt: skip
    p.add_argument("--space-options", help="JSON object of space settings, as space_options in a "
                   "search config")  # fmt: skip
    p.add_argument("--data", help="an .npz whose input shape and classes the laws are for "
                   "(default: 8x8 digits)")  # fmt: skip
    p.add_argument(
        "--metric", choices=["macs", "params", "planned_bytes", "latency_ms"], default="macs"
    )
    p.add_argument("--range", nargs=2, type=float, metavar=("LOW", "HIGH"),
                   help="split LOW..HIGH at 1, 2, 5 x 10^k and design laws for each window")  # fmt: skip
    p.add_argument("--window", nargs=2, type=float, action="append", metavar=("T1", "T2"),
                   help="design laws for this window (repeatable), instead of --range")  # fmt: skip
    p.add_argument("--device", help="board of the latency_ms metric (default: the latency model's)")
    p.add_argument("--n-init", type=int, default=100, help="laws in the population (default 100)")
    p.add_argument("--steps", type=int, default=900, help="GA steps, one child each (default 900)")
    p.add_argument("--n-eval", type=int, default=10, help="samples per law evaluation (default 10)")
    p.add_argument("--clusters", type=int, default=10, help="laws kept per window (default 10)")
    p.add_argument("--check-samples", type=int, default=100,
                   help="fresh samples each kept law is evaluated on for the printout (default 100)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="the laws JSON file to write")
    return p


def _laws(argv: Sequence[str]) -> int:
    """Design sampling laws per window and save them; print each window's stats."""
    args = _laws_parser().parse_args(argv)
    from tfnas.errors import TfnasError
    from tfnas.validation import check_int

    try:
        check_int("seed", args.seed, 0)
        if (args.range is None) == (args.window is None):
            raise ValueError("Give the metric's range or its windows. Expected exactly one of "
                             "--range LOW HIGH and --window T1 T2. Received: "
                             f"{'both' if args.range else 'neither'}")  # fmt: skip
        options = json.loads(args.space_options) if args.space_options else {}
        if not isinstance(options, dict):
            raise ValueError(
                f"--space-options must be a JSON object. Received: {args.space_options}"
            )
        from tfnas.objectives import get_device
        from tfnas.search import SearchConfig, _space, check_config, load_data
        from tfnas.strategies.law_design import check_law_options, decade_windows, design_windows

        if args.device is not None:
            get_device(args.device)
        config = SearchConfig(data=args.data, space=args.space, strategy="laws", space_options=options,
                              seed=args.seed)  # fmt: skip
        design = {"n_init": args.n_init, "steps": args.steps, "n_eval": args.n_eval,
                  "clusters": args.clusters, "check_samples": args.check_samples}  # fmt: skip
        check_config(config)
        check_law_options({"design": design, "metric_range": args.range, "windows": args.window})
        out = Path(args.out)
        if out.is_dir():
            raise ValueError(f"--out must be a file path. Received: --out {args.out}, a folder")
        data = load_data(config)
        space = _space(config, data.input_shape, data.num_classes)
        windows = decade_windows(*args.range) if args.range else [tuple(w) for w in args.window]
        start = time.perf_counter()
        lawset = design_windows(space, windows, args.metric, device=args.device, seed=args.seed,
                                tournament_size=5, **design)  # fmt: skip
        out.parent.mkdir(parents=True, exist_ok=True)
        lawset.save(out)
    except json.JSONDecodeError as e:
        print(f"tfnas laws: error: --space-options is not valid JSON: {e}", file=sys.stderr)
        return 2
    except (TfnasError, ValueError, OSError) as e:
        print(f"tfnas laws: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    print(f"laws for {args.metric} on the {space.name} space, input {tuple(space.input_shape)}, "
          f"{space.num_classes} classes ({len(windows)} windows, {time.perf_counter() - start:.1f} s)")  # fmt: skip
    for w in lawset.windows:
        best = w.stats[0]
        lo, hi = best.interval
        mean_inside = sum(s.inside for s in w.stats) / len(w.stats)
        print(f"  window {w.target[0]:.3g}..{w.target[1]:.3g}: {len(w.laws)} laws in "
              f"{w.design['seconds']:.1f} s; best law mean ± std {lo:.3g}..{hi:.3g}, {100 * best.inside:.0f}% "
              f"of its {best.samples} samples inside; {100 * mean_inside:.0f}% over all {len(w.laws)} laws")  # fmt: skip
    print(f"wrote {out}")
    return 0


def _precision_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="tfnas precision", description="Convert every Pareto model of a finished "
                "search to float32, float16 weights, dynamic range, int8 PTQ, int8 QAT and int16x8; "
                "measure accuracy (LiteRT), flash, the exact TFLM arena per target and whether TFLM "
                "runs it. Writes precision.json, precision.md and precision.png.")  # fmt: skip
    p.add_argument("run_dir", type=Path, help="the --out folder of a finished `tfnas search`")
    p.add_argument("--target", choices=["host", "cortex-m", "cortex-m-cmsis", "all"], default="all",
                   help="TFLM build(s) to measure the arena for (default all)")  # fmt: skip
    p.add_argument("--qat-epochs", type=int, default=1,
                   help="epochs of quantization-aware fine-tuning for int8 QAT (default 1)")  # fmt: skip
    p.add_argument("--qat-learning-rate", type=float, default=1e-4,
                   help="Adam's learning rate while fine-tuning for int8 QAT (default 1e-4)")  # fmt: skip
    p.add_argument("--formats", default="all", help="comma-separated subset of float32,float16,"
                   "dynamic,int8,int8_qat,int16x8 (default all)")  # fmt: skip
    p.add_argument("--test-samples", type=int,
                   help="score on a seeded subset of the test split (default: all of it)")  # fmt: skip
    p.add_argument("--tflm-samples", type=int, default=32, help="test samples the real TFLM "
                   "interpreter (tflite-micro) runs per model; 0 skips it (default 32)")  # fmt: skip
    p.add_argument("--out", type=Path, help="where the three files go (default RUN_DIR)")
    return p


def _precision(argv: Sequence[str]) -> int:
    """Six number formats of every Pareto model of a run: accuracy, flash, arena, TFLM support."""
    args = _precision_parser().parse_args(argv)
    from tfnas.errors import TfnasError

    try:
        from tfnas.precision import FORMATS, check_formats, check_run, check_targets
        from tfnas.validation import check_int, check_number

        formats = check_formats(FORMATS if args.formats == "all" else args.formats)
        targets = check_targets(args.target)
        check_int("--qat-epochs", args.qat_epochs, 1)
        if not check_number("--qat-learning-rate", args.qat_learning_rate, 0.0) > 0:
            raise ValueError("--qat-learning-rate must be positive. Received: "
                             f"--qat-learning-rate={args.qat_learning_rate!r}")  # fmt: skip
        check_int("--tflm-samples", args.tflm_samples, 0)
        check_int("--test-samples", args.test_samples, 1, optional=True)
        run = check_run(args.run_dir)  # before TensorFlow: a bad folder fails at once
        out = args.out or args.run_dir
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out must be a folder. Received: {out}, an existing file")
        print(f"precision: {len(run.trial_ids)} Pareto trials ({', '.join(run.trial_ids)}) x "
              f"{len(formats)} formats", flush=True)  # fmt: skip
        from tfnas.precision import analyze_precision, format_precision, write_precision

        def progress(row: dict) -> None:
            done = (f"accuracy {row['accuracy']:.4f}, flash {row['flash_bytes']:,} B"
                    if row["status"] == "ok" else f"failed: {row['reason'][:120]}")  # fmt: skip
            print(f"[tfnas] trial {row['trial_id']} {row['label']}: {done} ({row['seconds']:.0f} s)",
                  flush=True)  # fmt: skip

        result = analyze_precision(args.run_dir, formats, targets, qat_epochs=args.qat_epochs,
                                   qat_learning_rate=args.qat_learning_rate,
                                   test_samples=args.test_samples, tflm_samples=args.tflm_samples,
                                   progress=progress)  # fmt: skip
        written = write_precision(result, out)
    except (TfnasError, ValueError, OSError, KeyError) as e:
        print(f"tfnas precision: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    print(format_precision(result))
    print(f"wrote {out}/" + ", ".join(p.name for p in written))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tfnas`` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"inspect": None, "demo": _demo, "search": _search, "family": _family,
                "devices": _devices, "export": _export, "latency": _latency,
                "laws": _laws, "precision": _precision}  # fmt: skip
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in commands:
        print("usage: tfnas {search,family,precision,inspect,export,devices,latency,laws,demo} ...\n\n"
              "  search                 search architectures under a device budget (tfnas search -h)\n"
              "  family RUN_DIR         train and measure an MSNAS run's model family (tfnas family -h)\n"
              "  precision RUN_DIR      a run's Pareto models in six number formats (tfnas precision -h)\n"
              "  inspect MODEL.tflite   TFLM arena, flash and MACs of a model (tfnas inspect -h)\n"
              "  export MODEL.tflite    C array, op resolver, arena and a board program (tfnas export -h)\n"
              "  devices                the board catalogue: SRAM, flash, core, clock, target\n"
              "  latency ...            calibrate the latency model, estimate, time on host (tfnas latency -h)\n"
              "  laws design            design sampling laws for windows of a cost range (tfnas laws -h)\n"
              "  demo                   sample, train, quantize and measure a model on 8x8 digits",
              file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)  # fmt: skip
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    if argv[0] == "inspect":
        from tfnas.inspection import main as inspect_main

        return inspect_main(argv[1:])
    try:
        return commands[argv[0]](argv[1:])
    except SystemExit as e:  # argparse's -h (0) and bad arguments (2)
        return e.code if isinstance(e.code, int) else 2
