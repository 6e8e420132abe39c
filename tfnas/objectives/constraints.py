"""Device constraints on a candidate's measured (or estimated) resources."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

__all__ = ["Constraints"]

_BOUNDS = {
    "max_arena_bytes": None,  # resolved by `arena`
    "max_flash_bytes": "flash_bytes",
    "max_weights_bytes": "weights_bytes",
    "max_macs": "macs",
    "max_latency_ms": "latency_ms",
}


@dataclass(frozen=True)
class Constraints:
    """Upper bounds a deployable model must respect; ``None`` means unbounded.

    Attributes
    ----------
    max_arena_bytes:
        TFLM arena bound; ``arena`` says which number it bounds: ``"planned"``
        (the planner's head, as μNAS bounds RAM), ``"total"`` (planned plus
        persistent, i.e. ``arena_used_bytes``) or ``"min"`` (the smallest
        arena ``AllocateTensors`` accepts, what ``kTensorArenaSize`` needs).
    max_flash_bytes:
        The ``.tflite`` flatbuffer size.
    max_weights_bytes, max_macs, max_latency_ms:
        Weight bytes, multiply-accumulates, estimated latency.
    target:
        The TFLM build whose memory rules apply (``host``, ``cortex-m``,
        ``cortex-m-cmsis``); it also picks the kernels the latency model
        assumes (CMSIS-NN for ``cortex-m-cmsis``, reference kernels otherwise).
    device:
        The board (a name in :data:`~tfnas.objectives.DEVICES`) whose core and
        clock the latency model uses; ``None`` means
        :data:`~tfnas.objectives.latency.DEFAULT_LATENCY_DEVICE`.
    clock_mhz:
        Overrides the board's clock for the latency model.
    latency_calibration:
        A :class:`~tfnas.objectives.LatencyCalibration`, its ``to_dict()``, or
        the path of its JSON: the latency model then uses its fitted
        coefficients. It must be for the latency board's core and the target's
        kernels; without ``device`` its own board is the latency board. Stored
        as the calibration itself (not the path), so a resumed search with
        another calibration re-scores its trials.
    """

    max_arena_bytes: int | None = None
    max_flash_bytes: int | None = None
    max_weights_bytes: int | None = None
    max_macs: int | None = None
    max_latency_ms: float | None = None
    arena: str = "planned"
    target: str = "cortex-m"
    device: str | None = None
    clock_mhz: float | None = None
    latency_calibration: object = None

    def __post_init__(self) -> None:
        if self.arena not in ("planned", "total", "min"):
            raise ValueError(
                f"arena must be 'planned', 'total' or 'min'. Received: arena={self.arena!r}"
            )
        for name in _BOUNDS:
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive or None. Received: {name}={value}")
        if self.clock_mhz is not None and self.clock_mhz <= 0:
            raise ValueError(
                f"clock_mhz must be positive or None. Received: clock_mhz={self.clock_mhz}"
            )
        if self.device is not None:
            from tfnas.objectives.devices import get_device

            get_device(self.device)  # raises for an unknown board
        if self.latency_calibration is not None:
            self._set_calibration()

    def _set_calibration(self) -> None:
        import os

        from tfnas.objectives.calibration import LatencyCalibration
        from tfnas.objectives.latency import effective_kernels, kernels_for_target

        cal = self.latency_calibration
        if isinstance(cal, str | os.PathLike):
            cal = LatencyCalibration.load(cal)
        elif isinstance(cal, Mapping):
            cal = LatencyCalibration.from_dict(cal)
        elif not isinstance(cal, LatencyCalibration):
            raise ValueError(
                "latency_calibration must be a LatencyCalibration, its dict or the path of its "
                f"JSON. Received: latency_calibration of type {type(cal).__name__}"
            )
        object.__setattr__(self, "latency_calibration", cal)
        device = self.latency_device
        cal.check_applies(
            device.core, effective_kernels(device.core, kernels_for_target(self.target))
        )

    @property
    def latency_device(self):
        """The :class:`~tfnas.objectives.Device` the latency model runs on: ``device``, else the
        latency calibration's board, else :data:`~tfnas.objectives.latency.DEFAULT_LATENCY_DEVICE`."""
        from dataclasses import replace

        from tfnas.objectives.devices import get_device
        from tfnas.objectives.latency import DEFAULT_LATENCY_DEVICE

        cal = self.latency_calibration
        device = get_device(self.device or (cal.board if cal else None) or DEFAULT_LATENCY_DEVICE)
        return replace(device, clock_mhz=self.clock_mhz) if self.clock_mhz else device

    @property
    def arena_metric(self) -> str:
        """The metric key the arena bound applies to."""
        return {"planned": "planned_bytes", "total": "arena_bytes", "min": "min_arena_bytes"}[
            self.arena
        ]

    def bounds(self) -> dict[str, float]:
        """``{metric key: bound}`` for every bound that is set."""
        out = {}
        for name, metric in _BOUNDS.items():
            value = getattr(self, name)
            if value is not None:
                out[metric or self.arena_metric] = value
        return out

    def violations(self, metrics: Mapping[str, float]) -> dict[str, float]:
        """Relative excess of each broken bound: ``(value - bound) / bound``.

        A metric missing from ``metrics`` is not checked.
        """
        return {
            key: (metrics[key] - bound) / bound
            for key, bound in self.bounds().items()
            if key in metrics and metrics[key] > bound
        }

    def feasible(self, metrics: Mapping[str, float]) -> bool:
        """Whether every bound set here is respected by ``metrics``."""
        return not self.violations(metrics)

    def to_dict(self) -> dict:
        """The bounds as JSON-ready values; a calibration as its own ``to_dict()`` (left out when
        there is none, so the constraints saved by earlier versions compare equal)."""
        data = asdict(self)
        cal = data.pop("latency_calibration")
        if cal is not None:
            data["latency_calibration"] = self.latency_calibration.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping) -> Constraints:
        return cls(**data)
