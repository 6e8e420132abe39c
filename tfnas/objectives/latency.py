"""An analytic latency model of int8 TFLM inference on a microcontroller.

This is a **model, not a measurement**: no board was timed here. Two constants
are fitted to one public measurement on one board ([EAB26] below), the others
are assumptions or ratios from papers. It ranks candidates and bounds them
roughly (expect errors of 2x on absolute times, more on cores and kernels
nobody measured); do not quote its milliseconds as a board's.

Per operator, on the operator's core and kernels::

    cycles = MACs / rate(kind, kernels, core) + overhead(core)     (ops with MACs)
    cycles = bytes_moved / bandwidth(kind, kernels, core) + overhead(core)   (others)

``bytes_moved`` is the size of the operator's non-constant inputs plus its
outputs. The latency is the sum over operators divided by the clock. Rates are
set for a Cortex-M4 and carried to other cores in proportion to their
CoreMark/MHz; ``"optimized"`` kernels (CMSIS-NN on Arm, ESP-NN on Xtensa)
apply to int8 and int16 operators on cores with a SIMD/DSP extension, and
everything else runs at the reference kernels' rate.

Sources of the constants (each constant names its own below):

- [LAI18] L. Lai, N. Suda, V. Chandra, "CMSIS-NN: Efficient Neural Network
  Kernels for Arm Cortex-M CPUs", arXiv:1801.06601, 2018: CMSIS-NN kernels run
  a CIFAR-10 CNN on a Cortex-M7 4.6x faster than the baseline (non-SIMD)
  kernels (abstract).
- [LAI18b] L. Lai, N. Suda, V. Chandra, "Not All Ops Are Created Equal!",
  arXiv:1801.04326, 2018: throughput varies by up to 5x across operation
  types on a Cortex-M7 (abstract).
- [ARM-M4] Arm Cortex-M4 Devices Generic User Guide (DUI 0553A) and Cortex-M4
  processor overview: SMLAD/SMUAD do two signed 16x16 multiply-adds in one
  instruction, single-cycle on the M4; the Cortex-M0+ has no DSP/SIMD extension.
- [COREMARK] CoreMark/MHz as published by Arm and Espressif: Cortex-M0+ 2.46,
  Cortex-M4 3.40, Cortex-M7 5.01 (D. Ibrahim, "ARM-Based Microcontroller
  Projects Using mbed", Table 3.2; Arm's figure for the M0+), ESP32-S3
  (Xtensa LX7) 2.56 per core (Espressif ESP32-S3 data sheet).
- [MICRONETS] C. Banbury et al., "MicroNets", MLSys 2021: on MCU search spaces,
  latency is on average linear in the operation count, the premise of a
  MACs-over-rate model.
- [EAB26] S. Mattner, github.com/shanemmattner/embedded-agent-bridge,
  ``docs/ml-benchmark-comparison.md`` (2026): DWT cycle counts of TFLM with
  CMSIS-NN, int8, -Os, on an NXP MCXN947 (Cortex-M33 with the DSP extension,
  150 MHz): hello_world 4,813 cycles, person_detect 11,526,407, micro_speech
  1,705,940. (The author's earlier ``docs/ml-bench-results.md`` gave
  person_detect 26,316,498, which a DWT reset bug inflated; the first version
  of this model was fitted to it and overestimated person_detect 2.3x.) The
  M33 runs CMSIS-NN's DSP code path, as the M4 does; we treat it as an M4 per
  cycle. The three counts fix three constants below (conv and depthwise rates,
  the per-operator overhead) exactly, so no public point is left to check
  them on: one hobbyist measurement of one board, a weak anchor. Calibrate
  the model to your own board (:mod:`tfnas.objectives.calibration`).

Examples
--------
>>> est = estimate_latency("person_detect.tflite", "stm32f746zg")  # doctest: +SKIP
>>> est.kernels, est.core, est.ops[0].opcode  # doctest: +SKIP
('optimized', 'Cortex-M7', 'CONV_2D')
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from tfnas.objectives.devices import Device, get_device
from tfnas.tflite.model import Model, Operator, Subgraph, read_model

__all__ = [
    "CoreProfile",
    "CORES",
    "KERNELS",
    "OpLatency",
    "LatencyEstimate",
    "estimate_latency",
    "estimate_genome_latency",
    "kernels_for_target",
    "DEFAULT_LATENCY_DEVICE",
    "default_cycle_table",
    "effective_kernels",
    "op_quantities",
    "MAC_KINDS",
    "BYTE_KINDS",
]

logger = logging.getLogger("tfnas")

#: The board a latency is estimated for when none is given: the Arduino Nano 33
#: BLE Sense (nRF52840, Cortex-M4F at 64 MHz), TFLM's reference Arduino board.
DEFAULT_LATENCY_DEVICE = "arduino-nano-33-ble-sense"

KERNELS = ("optimized", "reference")


@dataclass(frozen=True)
class CoreProfile:
    """A CPU core as the latency model sees it.

    Attributes
    ----------
    name:
        The core (``"Cortex-M4"``).
    coremark_per_mhz:
        Scalar integer speed per clock, relative to which rates are scaled.
    simd:
        Whether optimized int8 kernels have a SIMD/DSP path on it.
    """

    name: str
    coremark_per_mhz: float
    simd: bool


# [COREMARK] for the speeds; [ARM-M4] for which cores have the DSP extension.
# The ESP32-S3's LX7 has 128-bit SIMD that ESP-NN uses; it is modelled as an
# M4-like SIMD core scaled by its CoreMark (an assumption: ESP-NN's own speed-up
# is not modelled).
CORES: dict[str, CoreProfile] = {
    c.name: c
    for c in (
        CoreProfile("Cortex-M0+", 2.46, simd=False),
        CoreProfile("Cortex-M4", 3.40, simd=True),
        CoreProfile("Cortex-M7", 5.01, simd=True),
        CoreProfile("Xtensa LX7", 2.56, simd=True),
    )
}
# The Cortex-M33 with the DSP extension runs CMSIS-NN's DSP code path, as the M4 does, and is
# modelled as an M4 per cycle ([EAB26]'s board); calibrate it to do better.
_ALIASES = {
    "Cortex-M4F": "Cortex-M4",
    "Cortex-M7F": "Cortex-M7",
    "Cortex-M0plus": "Cortex-M0+",
    "Cortex-M33": "Cortex-M4",
}
_BASE = CORES["Cortex-M4"]

# ---------------------------------------------------------------------------
# Rates on a Cortex-M4 (per clock cycle). Each one is a model constant.
# ---------------------------------------------------------------------------

#: MACs per cycle of the MAC-bound kinds, int8, on a Cortex-M4.
MACS_PER_CYCLE: Mapping[str, Mapping[str, float]] = {
    "optimized": {
        # Fitted with the depthwise rate and the overhead to [EAB26]'s three counts
        # (non-negative least squares, tfnas.objectives.calibration, coefficients
        # conv, depthwise, overhead; exact on three points): 1.065 cycles per
        # conv MAC. SMLAD's peak is 2 MACs/cycle [ARM-M4]; im2col, int8->int16
        # widening and loads take the rest.
        "conv": 0.94,
        # 5.07 cycles per depthwise MAC from the same fit: depthwise reuses each
        # weight over one channel only ([LAI18b] reports up to 5x throughput
        # spread across op types).
        "depthwise": 0.197,
        # Fully connected reads each weight once (load-bound); no public count
        # separates it from the overhead. Assumption: 0.21 MACs/cycle.
        "fully_connected": 0.21,
    },
    "reference": {
        # The optimized rates divided by [LAI18]'s 4.6x CMSIS-NN speed-up: about
        # 15 cycles per MAC, as TFLM's portable kernels compute a 4-D offset
        # and a bounds check per filter tap.
        "conv": 0.94 / 4.6,
        "depthwise": 0.197 / 4.6,
        "fully_connected": 0.21 / 4.6,
    },
}

#: Bytes moved per cycle of the kinds without MACs, on a Cortex-M4 (assumptions,
#: from instruction counts of the kernels' inner loops).
BYTES_PER_CYCLE: Mapping[str, Mapping[str, float]] = {
    "optimized": {
        "memory": 2.0,  # copy: one word load + store per 4 bytes read and 4 written
        "pooling": 1.0,  # CMSIS-NN pools four int8 lanes per SIMD compare/add
        "elementwise": 0.3,  # requantize per element (SMULL + rounding), 4-lane SIMD adds
        "reduce": 0.5,  # one load and accumulate per input element
        "softmax": 0.03,  # exp and reciprocal per element (about 60 cycles)
    },
    "reference": {
        "memory": 2.0,
        "pooling": 0.25,  # scalar: load, compare/accumulate, bounds checks per element
        "elementwise": 0.1,  # 3 bytes per element, about 30 cycles of requantization
        "reduce": 0.5,
        "softmax": 0.03,
    },
}

#: Fixed cycles per operator on a Cortex-M4: TFLM's invoke loop, tensor look-ups
#: and the kernel's per-call setup. From the same fit as the conv and depthwise
#: rates; hello_world (three fully connected ops, 288 MACs, 4,813 cycles) alone
#: gives (4,813 - 288 / 0.21) / 3 = 1,147.
OP_OVERHEAD_CYCLES = 1147.0

_KIND = {
    "CONV_2D": "conv",
    "TRANSPOSE_CONV": "conv",
    "DEPTHWISE_CONV_2D": "depthwise",
    "FULLY_CONNECTED": "fully_connected",
    "BATCH_MATMUL": "fully_connected",
    "SVDF": "fully_connected",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "fully_connected",
    "MAX_POOL_2D": "pooling",
    "AVERAGE_POOL_2D": "pooling",
    "L2_POOL_2D": "pooling",
    "MEAN": "reduce",
    "SUM": "reduce",
    "REDUCE_MAX": "reduce",
    "REDUCE_MIN": "reduce",
    "SOFTMAX": "softmax",
    "LOG_SOFTMAX": "softmax",
    **dict.fromkeys(
        """RESHAPE SQUEEZE EXPAND_DIMS CONCATENATION PAD PADV2 MIRROR_PAD SLICE
        STRIDED_SLICE SPLIT SPLIT_V PACK UNPACK TRANSPOSE GATHER GATHER_ND
        DEPTH_TO_SPACE SPACE_TO_DEPTH BATCH_TO_SPACE_ND SPACE_TO_BATCH_ND
        BROADCAST_TO REVERSE_V2 SHAPE ZEROS_LIKE FILL""".split(),
        "memory",
    ),
}
_OPTIMIZED_DTYPES = frozenset({"INT8", "INT16"})


@dataclass(frozen=True)
class OpLatency:
    """The modelled cost of one operator."""

    subgraph: int
    index: int
    opcode: str
    kind: str
    kernels: str
    macs: int
    bytes_moved: int
    cycles: float


@dataclass(frozen=True)
class LatencyEstimate:
    """Modelled latency of one inference (a model, not a measurement).

    Attributes
    ----------
    device:
        The board's name, or ``None`` for a bare clock.
    core, clock_mhz:
        The core modelled and its clock.
    kernels:
        ``"optimized"`` or ``"reference"``, as requested.
    ops:
        Every operator's cost, in execution order (subgraph 0 first).
    """

    device: str | None
    core: str
    clock_mhz: float
    kernels: str
    ops: tuple[OpLatency, ...]

    @property
    def total_cycles(self) -> float:
        return sum(op.cycles for op in self.ops)

    @property
    def latency_ms(self) -> float:
        return self.total_cycles / (self.clock_mhz * 1e3)

    @property
    def macs(self) -> int:
        return sum(op.macs for op in self.ops)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["ops"] = [asdict(op) for op in self.ops]
        data.update(total_cycles=self.total_cycles, latency_ms=self.latency_ms)
        return data


def kernels_for_target(target: str) -> str:
    """The kernels a TFLM memory target implies: CMSIS-NN for ``cortex-m-cmsis``."""
    return "optimized" if target == "cortex-m-cmsis" else "reference"


def _core(name: str) -> CoreProfile:
    key = _ALIASES.get(name, name)
    if key not in CORES:
        raise ValueError(
            f"Unknown core. Expected one of {sorted(CORES) + sorted(_ALIASES)}. Received: core={name!r}"
        )
    return CORES[key]


def _bytes_moved(sg: Subgraph, op: Operator) -> int:
    inputs = [t for t in op.inputs if t >= 0 and not sg.tensors[t].is_constant]
    return sum(sg.tensors[t].nbytes for t in (*inputs, *(t for t in op.outputs if t >= 0)))


def _op_dtype(sg: Subgraph, op: Operator) -> str | None:
    first = next((t for t in op.inputs if t >= 0), None)
    return sg.tensors[first].dtype if first is not None else None


MAC_KINDS = ("conv", "depthwise", "fully_connected")
BYTE_KINDS = ("memory", "pooling", "elementwise", "reduce", "softmax")


def default_cycle_table(core: str, kernels: str) -> dict:
    """The default model's cycles per unit on ``core``: ``{(kernels, kind): cycles per MAC or
    byte moved, ..., "overhead": cycles per operator}`` for both kernel families.

    ``kernels`` is accepted for symmetry with a calibration and checked; the table covers both
    families because float operators run at the reference rate whatever is requested.
    """
    if kernels not in KERNELS:
        raise ValueError(f"kernels must be one of {KERNELS}. Received: kernels={kernels!r}")
    profile = _core(core)
    scale = profile.coremark_per_mhz / _BASE.coremark_per_mhz
    table: dict = {"overhead": OP_OVERHEAD_CYCLES / scale}
    for family in KERNELS:
        for kind in MAC_KINDS:
            table[family, kind] = 1.0 / (MACS_PER_CYCLE[family][kind] * scale)
        for kind in BYTE_KINDS:
            table[family, kind] = 1.0 / (BYTES_PER_CYCLE[family][kind] * scale)
    return table


def _cycle_table(profile: CoreProfile, kernels: str, calibration) -> dict:
    """The default table, with a calibration's coefficients in place where it applies."""
    table = default_cycle_table(profile.name, kernels)
    if calibration is not None:
        calibration.check_applies(profile.name, effective_kernels(profile.name, kernels))
        table.update(calibration.cycle_table())
    return table


def effective_kernels(core: str, kernels: str) -> str:
    """The kernels int8 operators run with: ``kernels``, or ``"reference"`` on a core without SIMD."""
    return kernels if _core(core).simd else "reference"


def op_quantities(model: bytes | str | os.PathLike | Model, core: str, kernels: str):
    """Per operator of a flatbuffer: ``(subgraph, op, kind, kernels used, MACs, bytes moved)``.

    The quantities the latency model multiplies by its cycles per unit (see
    :func:`estimate_latency`); calibration fits its coefficients to them.
    """
    from tfnas.inspection import op_macs

    profile = _core(core)
    parsed = read_model(model)
    for sg in parsed.subgraphs:
        for op in sg.operators:
            macs = op_macs(sg, op)
            kind = _KIND.get(op.opcode, "elementwise")
            if macs == 0 and kind in MAC_KINDS:
                kind = "elementwise"  # a MAC op whose shapes we cannot read
            used = kernels
            if not (profile.simd and _op_dtype(sg, op) in _OPTIMIZED_DTYPES):
                used = "reference"
            yield sg, op, kind, used, macs, _bytes_moved(sg, op)


def estimate_latency(
    model: bytes | str | os.PathLike | Model,
    device: str | Device | float = DEFAULT_LATENCY_DEVICE,
    *,
    core: str | None = None,
    kernels: str = "optimized",
    calibration=None,
) -> LatencyEstimate:
    """Model the latency of one inference of a ``.tflite`` model.

    This is an analytic model with uncalibrated constants (see the module
    docstring for each one's source), not a measurement on a board.

    Parameters
    ----------
    model:
        The ``.tflite`` flatbuffer (bytes or path) or a parsed
        :class:`~tfnas.tflite.model.Model`.
    device:
        A board name from :data:`~tfnas.objectives.DEVICES`, a
        :class:`~tfnas.objectives.Device`, or a bare clock in MHz (then
        ``core`` is required).
    core:
        Overrides the board's core (one of :data:`CORES`, or ``Cortex-M4F``).
    kernels:
        ``"optimized"`` (CMSIS-NN / ESP-NN, the default) or ``"reference"``
        (TFLM's portable kernels). Optimized rates apply only to int8/int16
        operators on cores with SIMD; others run at the reference rate.
    calibration:
        A :class:`~tfnas.objectives.LatencyCalibration` (or the path of its
        JSON) fitted to measurements on this core with these kernels: its
        coefficients replace the default ones (docs/latency.md).

    Returns
    -------
    LatencyEstimate
        Total and per-operator cycles; ``latency_ms`` at the clock.

    Raises
    ------
    ValueError
        For an unknown board, core or kernel family, a non-positive clock, a
        bare clock without a core, or a calibration made for another core or kernels.
    FlatbufferError
        If ``model`` is not a valid flatbuffer.
    """
    if kernels not in KERNELS:
        raise ValueError(f"kernels must be one of {KERNELS}. Received: kernels={kernels!r}")
    if isinstance(device, str):
        device = get_device(device)
    if isinstance(device, Device):
        name, clock_mhz, profile = device.name, float(device.clock_mhz), _core(core or device.core)
    elif isinstance(device, int | float) and not isinstance(device, bool):
        if core is None:
            raise ValueError(
                f"A bare clock needs the core too. Expected core= one of {sorted(CORES)}. "
                f"Received: device={device!r}, core=None"
            )
        name, clock_mhz, profile = None, float(device), _core(core)
    else:
        raise ValueError(
            "device must be a board name, a Device or a clock in MHz. "
            f"Received: device of type {type(device).__name__}"
        )
    if clock_mhz <= 0:
        raise ValueError(f"The clock must be positive. Received: clock_mhz={clock_mhz}")

    table = _cycle_table(profile, kernels, _load_calibration(calibration))
    ops = []
    for sg, op, kind, used, macs, moved in op_quantities(model, profile.name, kernels):
        cycles = (macs or moved) * table[used, kind] + table["overhead"]
        ops.append(OpLatency(sg.index, op.index, op.opcode, kind, used, macs, moved, cycles))
    return LatencyEstimate(name, profile.name, clock_mhz, kernels, tuple(ops))


def _genome_macs_by_kind(genome) -> dict[str, int]:
    """MACs of a genome split by kernel kind (their sum is ``analyze(genome).macs``)."""
    from tfnas.genome.genome import OUT

    one_d = genome.one_d
    macs = {"conv": 0, "depthwise": 0, "fully_connected": 0}
    shape = genome.spatial_input_shape()
    for s in range(len(genome.stages)):
        merged, outputs = genome.stage_shapes(s, shape)
        graph = genome.stages[s]
        for node, _, _ in genome.stage_steps(s):
            if node == OUT:
                continue
            attrs, c_in = graph.nodes[node], merged[node][2]
            h, w, c_out = outputs[node]
            area = attrs.get("kernel", 1) * (1 if one_d else attrs.get("kernel", 1))
            if attrs["op"] == "conv":
                macs["conv"] += area * c_in * c_out * h * w
            elif attrs["op"] == "sepconv":
                macs["depthwise"] += area * c_in * h * w
                macs["conv"] += c_in * c_out * h * w
            elif attrs["op"] == "dwconv":
                macs["depthwise"] += area * c_in * h * w
        shape = outputs[OUT]
        if s < len(genome.downsamples):
            out = genome.downsample_shape(s, shape)
            if genome.downsamples[s].op == "conv":
                macs["conv"] += (3 if one_d else 9) * shape[2] * out[0] * out[1] * out[2]
            shape = out
    features = shape[2] if genome.head.pool == "gap" else shape[0] * shape[1] * shape[2]
    for units in (*genome.head.hidden, genome.num_classes):
        macs["fully_connected"] += features * units
        features = units
    return macs


def estimate_genome_latency(
    genome,
    device: str | Device = DEFAULT_LATENCY_DEVICE,
    *,
    kernels: str = "optimized",
    estimate=None,
    calibration=None,
) -> float:
    """Modelled int8 latency (ms) of a genome before it is built or converted.

    The same model as :func:`estimate_latency`, on the operators the genome
    estimate (:func:`tfnas.memory.estimate_memory`) predicts: MACs by kernel
    kind from the genome, bytes moved from the predicted tensors, one overhead
    per predicted operator. Used to rank and screen candidates; the trial's
    ``latency_ms`` comes from the converted flatbuffer. ``estimate`` reuses a
    :class:`~tfnas.memory.GenomeEstimate` already computed for the genome;
    ``calibration`` is used as in :func:`estimate_latency`.
    """
    from tfnas.memory.estimate import estimate_memory

    if kernels not in KERNELS:
        raise ValueError(f"kernels must be one of {KERNELS}. Received: kernels={kernels!r}")
    device = get_device(device) if isinstance(device, str) else device
    profile = _core(device.core)
    used = effective_kernels(profile.name, kernels)
    table = _cycle_table(profile, kernels, _load_calibration(calibration))
    cycles = sum(m * table[used, k] for k, m in _genome_macs_by_kind(genome).items())
    est = estimate if estimate is not None else estimate_memory(genome)
    for op in est.ops:
        kind = _KIND.get(op.opcode, "elementwise")
        if kind not in MAC_KINDS:
            moved = sum(est.tensor_bytes[t] for t in (*op.inputs, *op.outputs))
            cycles += moved * table[used, kind]
        cycles += table["overhead"]
    return cycles / (float(device.clock_mhz) * 1e3)


def _load_calibration(calibration):
    if calibration is None:
        return None
    from tfnas.objectives.calibration import LatencyCalibration

    if isinstance(calibration, LatencyCalibration):
        return calibration
    if isinstance(calibration, str | os.PathLike):
        return LatencyCalibration.load(calibration)
    raise ValueError(
        "calibration must be a LatencyCalibration or the path of its JSON. "
        f"Received: calibration of type {type(calibration).__name__}"
    )
