"""The main job: search under a device budget and write deployable outputs.

:func:`run_search` is what ``tfnas search`` runs. It writes into ``out``:
``best.tflite``, ``model_data.cc`` / ``model_data.h``, ``report.json``, ``pareto.png`` and ``report.md``
(and ``metagraph.json``, the learned meta-graph, for ``strategy="msnas"``); the trials
live in ``out/search``. Running it again with the same settings resumes the
search: completed trials are kept and only the missing ones run.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from tfnas.errors import InputError
from tfnas.validation import check_choice, check_headroom, check_int, check_keys, read_text

__all__ = ["SearchConfig", "run_search", "load_config", "check_config"]


@dataclass
class SearchConfig:
    """Every setting of a search; the CLI flags and the config file mirror these names."""

    data: str | None = None
    space: str = "micro"
    strategy: str = "evolution"
    max_trials: int = 10
    epochs: int = 6
    batch_size: int = 32
    max_arena: int | None = 24_000
    arena: str = "total"
    max_flash: int | None = 64_000
    max_weights: int | None = None
    max_macs: int | None = None
    device: str | None = None
    headroom: float = 0.25
    target: str = "cortex-m"
    quantization: str = "ptq"
    population: int | None = None
    sample: int | None = None
    out: str = "tfnas_runs/search"
    seed: int = 0
    space_options: dict = field(default_factory=dict)
    #: Training samples each trial sees (MSNAS's proxy set; default: all, 5,000 for msnas).
    proxy_samples: int | None = None
    #: Extra oracle settings, e.g. MSNAS's ``alpha`` or ``lambda_macs``, MicroNAS's ``pool``,
    #: ``proxy_weights`` (hybrid weights on ``macs``, ``latency_ms``, ``params``, ``width``).
    strategy_options: dict = field(default_factory=dict)
    #: Zero-shot pre-ranking: screened candidates drawn per trial, the best by the hybrid proxy trained.
    proxy_pool: int = 1
    #: Successive halving: new candidates train this many epochs; the best 1/eta continue to ``epochs``.
    min_epochs: int | None = None
    eta: int = 3
    #: Successive halving over the data too: new candidates train on this fraction of the
    #: training set, each rung on ``eta`` times more (at most all of it). Needs ``min_epochs``.
    min_data: float | None = None
    #: Final fit: retrain the best ``final_top`` feasible architectures on the whole training
    #: split for this many epochs; ``best.tflite`` is then the best final model.
    final_epochs: int | None = None
    final_top: int = 3
    #: Bound on the modelled int8 latency in milliseconds (on ``device``, else the calibration's board).
    max_latency_ms: float | None = None
    #: A latency calibration JSON (``tfnas latency calibrate``): the latency model uses its coefficients.
    latency_calibration: str | None = None

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in fields(cls)]


def load_config(path: str | Path) -> dict:
    """Read a YAML or JSON config file whose keys are :class:`SearchConfig` fields.

    Raises
    ------
    InputError
        If the file is missing, is not valid YAML/JSON, does not hold a mapping,
        or names a setting :class:`SearchConfig` does not have (the closest one
        is suggested).
    """
    path = Path(path)
    text = read_text(path, "Config file", "a YAML or JSON file", received=f"--config {path}")
    if path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            where = getattr(e, "problem_mark", None)
            line = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
            problem = getattr(e, "problem", None) or str(e).splitlines()[0]
            raise InputError(f"{path} is not valid YAML{line}: {problem}. Expected a mapping of "
                             "settings such as `max_trials: 10`") from e  # fmt: skip
        data = {} if data is None else data
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"{path} is not valid JSON at line {e.lineno}, column {e.colno}: "
                             f"{e.msg}. Expected an object of settings (or use .yaml)") from e  # fmt: skip
    if not isinstance(data, dict):
        raise InputError(
            f"{path}: a config file must hold a mapping of settings. Received: {type(data).__name__}"
        )
    data = {str(k).replace("-", "_"): v for k, v in data.items()}
    check_keys(str(path), data, SearchConfig.keys())
    return data


def check_config(config: SearchConfig) -> None:
    """Every setting's type and range, checked before data loads or TensorFlow is imported.

    Raises
    ------
    InputError
        Naming the setting, what it must be and what it was.
    """
    from tfnas.genome import SPACES
    from tfnas.objectives import DEVICES
    from tfnas.strategies import STRATEGIES, strategy_options

    c = config
    if c.data is not None and not isinstance(c.data, (str, Path)):
        raise InputError(f"data must be a path to an .npz file. Received: data={c.data!r}")
    check_choice("space", c.space, sorted(SPACES))
    check_choice("strategy", c.strategy, sorted(STRATEGIES))
    for key in ("max_trials", "epochs", "batch_size"):
        check_int(key, getattr(c, key), 1)
    for key in ("max_arena", "max_flash", "max_weights", "max_macs", "population", "sample",
                "proxy_samples"):  # fmt: skip
        check_int(key, getattr(c, key), 1, optional=True)
    check_int("seed", c.seed, 0)
    check_choice("arena", c.arena, ["planned", "total", "min"])
    check_choice("target", c.target, ["host", "cortex-m", "cortex-m-cmsis"])
    check_choice("quantization", c.quantization, ["ptq", "qat"])
    if c.device is not None:
        check_choice("device", c.device, sorted(DEVICES))
    check_headroom(c.headroom)
    if c.population is not None and c.sample is not None and c.sample > c.population:
        raise InputError(f"sample must not exceed population. Received: sample={c.sample}, "
                         f"population={c.population}")  # fmt: skip
    if not isinstance(c.out, (str, Path)) or not str(c.out):
        raise InputError(f"out must be a folder path. Received: out={c.out!r}")
    for key in ("space_options", "strategy_options"):
        if not isinstance(getattr(c, key), dict):
            raise InputError(
                f"{key} must be a mapping of settings. Received: {key}={getattr(c, key)!r}"
            )
    space_cls = _space_class(c)
    check_keys(f"space_options (for the {c.space if c.strategy != 'msnas' else 'msnas meta-graph'} "
               "space)", c.space_options, _parameters(space_cls) - {"input_shape", "num_classes"})  # fmt: skip
    check_keys(f"strategy_options (for the {c.strategy} strategy)", c.strategy_options,
               strategy_options(c.strategy))  # fmt: skip
    _check_search_settings(c)
    _check_latency_settings(c)
    if c.strategy == "laws":
        from tfnas.strategies.law_design import check_law_options

        check_law_options(c.strategy_options)


def _check_latency_settings(config: SearchConfig) -> None:
    """The latency bound and calibration, checked (and the calibration read) before TensorFlow."""
    from tfnas.validation import check_number

    if config.max_latency_ms is not None:
        check_number("max_latency_ms", config.max_latency_ms)
        if config.max_latency_ms <= 0:
            raise InputError(f"max_latency_ms must be a positive number of milliseconds. Received: "
                             f"max_latency_ms={config.max_latency_ms!r}")  # fmt: skip
    if config.latency_calibration is not None:
        if not isinstance(config.latency_calibration, (str, Path)):
            raise InputError("latency_calibration must be the path of a calibration JSON. "
                             f"Received: latency_calibration={config.latency_calibration!r}")  # fmt: skip
    try:
        _constraints(config)  # reads the calibration and checks it fits the board and target
    except ValueError as e:
        raise InputError(" ".join(str(e).split())) from e


def _space_class(config: SearchConfig):
    from tfnas.genome import SPACES

    if config.strategy == "msnas":
        from tfnas.strategies import MetaGraph

        return MetaGraph
    return SPACES[config.space]


def _parameters(cls) -> set[str]:
    import inspect

    return {
        name
        for name, p in inspect.signature(cls).parameters.items()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }


def _space(config: SearchConfig, input_shape, num_classes):
    if config.strategy == "msnas":  # MSNAS searches its own meta-graph
        defaults = {"stages": 2, "nodes": 6, "channels": [8, 16], "seed": config.seed}
    else:
        small = min(input_shape[:2]) < 16 if len(input_shape) == 3 else input_shape[0] < 16
        defaults = {
            "micro": {"max_blocks": 4, "max_channels": 32, "max_dense": 2},
            "msnas": {"stages": 2, "nodes": 4, "channels": [8, 16]},
            "cell": {"channels": [8, 16, 32], "cells": 1, "stem_stride": 1 if small else 2},
        }.get(config.space, {})
    space_cls = _space_class(config)
    return space_cls(input_shape, num_classes, **{**defaults, **config.space_options})


def _constraints(config: SearchConfig):
    from dataclasses import replace

    from tfnas.objectives import Constraints, get_device

    latency = {"max_latency_ms": config.max_latency_ms,
               "latency_calibration": config.latency_calibration}  # fmt: skip
    if config.device:
        device = get_device(config.device)
        budget = device.budget(ram_headroom=config.headroom, flash_headroom=config.headroom,
                               max_macs=config.max_macs)  # fmt: skip
        return (
            replace(budget, **latency) if any(v is not None for v in latency.values()) else budget
        )
    return Constraints(max_arena_bytes=config.max_arena, max_flash_bytes=config.max_flash,
                       max_weights_bytes=config.max_weights, max_macs=config.max_macs,
                       arena=config.arena, target=config.target, **latency)  # fmt: skip


def _check_search_settings(config: SearchConfig) -> None:
    """The multi-fidelity and final-fit settings, checked before anything loads or trains."""
    minimum = {"proxy_pool": 1, "eta": 2, "final_top": 1, "min_epochs": 1, "final_epochs": 1}
    for key, low in minimum.items():
        value = getattr(config, key)
        if value is None and key in ("min_epochs", "final_epochs"):
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InputError(f"{key} must be an integer >= {low}. Received: {key}={value!r}")
    if config.min_epochs is not None and config.min_epochs >= config.epochs:
        raise InputError(
            "min_epochs must be below epochs (successive halving trains new candidates "
            f"min_epochs and promotes the best up to epochs). Received: min_epochs="
            f"{config.min_epochs}, epochs={config.epochs}"
        )
    data = config.min_data
    if data is not None:
        if isinstance(data, bool) or not isinstance(data, (int, float)) or not 0 < data <= 1:
            raise InputError(
                f"min_data must be a fraction of the training set in (0, 1]. Received: min_data={data!r}"
            )
        if config.min_epochs is None:
            raise InputError(
                "min_data is a successive-halving setting and needs min_epochs (the epochs of a new "
                f"candidate). Received: min_data={data!r}, min_epochs=None"
            )


#: Outputs a search writes for its best feasible model (removed when no trial is feasible any more).
DEPLOYED = ("best.tflite", "model_data.cc", "model_data.h", "pareto.png")


def training_subset(data, proxy_samples: int | None, strategy: str, seed: int):
    """The training images a search's trials see: ``proxy_samples`` of them (MSNAS: 5,000 by
    default, the paper's proxy set), a seeded subset; all of them otherwise."""
    proxy = proxy_samples or (5000 if strategy == "msnas" else None)
    return data.subset(train=proxy, seed=seed) if proxy else data


def load_data(config: SearchConfig):
    """The config's dataset (``.npz`` or the bundled digits), checked."""
    from tfnas.data import load_digits, load_npz

    return load_npz(config.data) if config.data else load_digits(seed=config.seed)


def run_search(config: SearchConfig, verbose: int = 1) -> dict:
    """Run (or resume) a search and write its outputs; returns the report.

    Settings, data and the space are checked before TensorFlow is imported
    (:func:`check_config`, :func:`tfnas.data.load_npz`). A resume whose space
    or strategy differs is refused before any file changes; a resume with other
    constraints re-scores every completed trial against the new bounds (see
    :class:`tfnas.tuner.NASTuner`). ``best.tflite``, the C files and
    ``pareto.png`` are written only when a completed trial is feasible (and
    removed if a re-scored resume leaves none); ``report["written"]`` lists the
    files this call wrote.
    """
    check_config(config)
    data = load_data(config)
    space = _space(config, data.input_shape, data.num_classes)
    constraints = _constraints(config)
    if config.strategy == "laws":  # the laws file against this task and space, before TensorFlow
        from tfnas.strategies.law_design import check_law_options

        check_law_options(config.strategy_options, space)
    kwargs = {}
    if config.strategy == "evolution":
        population = config.population or max(2, config.max_trials // 2)
        kwargs = {
            "population_size": population,
            "sample_size": min(population, config.sample or max(1, population // 4)),
        }
    if config.proxy_pool != 1:
        kwargs["proxy_pool"] = config.proxy_pool
    if config.min_epochs is not None:
        kwargs["halving"] = {"min_epochs": config.min_epochs, "eta": config.eta,
                             "max_epochs": config.epochs}  # fmt: skip
        if config.min_data is not None:
            kwargs["halving"]["min_data"] = config.min_data
    train = training_subset(data, config.proxy_samples, config.strategy, config.seed)
    out = Path(config.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"out must be a folder. Received: out={str(out)!r}, an existing file")

    # Everything above needs no TensorFlow; from here on it is imported.
    from tfnas.errors import InfeasibleModelError
    from tfnas.export import write_c_files
    from tfnas.strategies import get_strategy
    from tfnas.tuner import NASTuner, plot_pareto, write_report

    oracle = get_strategy(config.strategy)(space, constraints, max_trials=config.max_trials,
                                           seed=config.seed, **{**kwargs, **config.strategy_options})  # fmt: skip
    tuner = NASTuner(oracle, quantization=config.quantization, directory=out, project_name="search",
                     overwrite=False, verbose=verbose)  # fmt: skip
    if tuner.role == "worker":  # a worker runs trials for the chief, which writes every output
        tuner.search(train.x_train, train.y_train, validation_data=(data.x_test, data.y_test),
                     epochs=config.epochs, batch_size=config.batch_size)  # fmt: skip
        return {"role": "worker", "trials": [], "best": None, "written": []}
    # The resume was accepted (or this is a new search): only now record its settings.
    (out / "config.json").write_text(json.dumps(asdict(config), indent=1, default=str))
    written = [out / "config.json"]
    try:
        tuner.search(train.x_train, train.y_train, validation_data=(data.x_test, data.y_test),
                     epochs=config.epochs, batch_size=config.batch_size)  # fmt: skip
    except InfeasibleModelError as e:
        write_report(tuner.report(), out / "report.json")
        raise InfeasibleModelError(
            f"{e}; the rejected candidates are in {out / 'report.json'}"
        ) from e
    if config.final_epochs and tuner.report()["best"] is not None:
        tuner.final_fit(data.x_train, data.y_train, (data.x_test, data.y_test),
                        top_k=config.final_top, epochs=config.final_epochs,
                        batch_size=config.batch_size)  # fmt: skip
    report = tuner.report()
    write_report(report, out / "report.json")
    written.append(out / "report.json")
    for name in DEPLOYED:  # stale outputs of an earlier best never outlive it
        (out / name).unlink(missing_ok=True)
    if report["best"] is not None:
        plot_pareto(report, out / "pareto.png")
        tflite = tuner.get_final_tflite() if config.final_epochs else None
        if tflite is None:
            tflite = (Path(tuner.get_trial_dir(report["best"])) / "model.tflite").read_bytes()
        (out / "best.tflite").write_bytes(tflite)
        c_files = write_c_files(tflite, out, target=constraints.target)
        written += [out / "best.tflite", *c_files, out / "pareto.png"]
    if config.strategy == "msnas":
        space.save(out / "metagraph.json")
        written.append(out / "metagraph.json")
    if config.strategy == "laws" and oracle.lawset is not None:  # reusable: --laws out/laws.json
        written.append(oracle.lawset.save(out / "laws.json"))
    (out / "report.md").write_text(_markdown(report, data.name))
    written.append(out / "report.md")
    report["written"] = [str(p) for p in written if p.exists()]
    return report


def _markdown(report: dict, dataset: str) -> str:
    done = [r for r in report["trials"] if r["status"] == "completed"]
    final = report.get("final", {})
    lines = [
        f"# tfnas search on {dataset}",
        "",
        f"Strategy {report['strategy']}, space {report['space']['name']}, target {report['target']}.",
        f"Constraints: {json.dumps({k: v for k, v in report['constraints'].items() if v is not None})}.",
        f"{len(done)} trials completed, {len(report['rejected'])} candidates rejected before training; "
        f"best trial {report['best']}; Pareto front {report['pareto']} "
        f"(normalised hypervolume {report['hypervolume']:.4f}).",
        "",
        "| trial | int8 acc | float acc | arena B | planned B | flash B | MACs | feasible | s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in done:
        lines.append(
            f"| {r['trial_id']} | {r['int8_accuracy']:.3f} | {r['val_accuracy']:.3f} | {r['arena_bytes']:,} | "
            f"{r['planned_bytes']:,} | {r['flash_bytes']:,} | {r['macs']:,} | {r['feasible']} | {r['seconds']:.1f} |"
        )
    if final.get("fits"):
        lines += ["", f"## Final fit ({final['settings']['epochs']} epochs on the whole training split; "
                      f"best.tflite is trial {final['best']}'s final model)", "",
                  "| trial | search int8 acc | final int8 acc | arena B | flash B | feasible |",
                  "|---|---|---|---|---|---|"]  # fmt: skip
        for f in final["fits"]:
            if f.get("status") == "completed":
                lines.append(f"| {f['trial_id']} | {f['search_int8_accuracy']:.3f} | {f['int8_accuracy']:.3f} | "
                             f"{int(f['arena_bytes']):,} | {int(f['flash_bytes']):,} | {f['feasible']} |")  # fmt: skip
    return "\n".join(lines) + "\n"
