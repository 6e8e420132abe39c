"""A catalogue of microcontroller boards and the budgets they give a model.

Figures are the vendors' data-sheet totals: on-chip SRAM and the flash the
board ships with. The tensor arena must also fit in one contiguous SRAM block
beside the application's own RAM (stack, heap, buffers), so a budget subtracts
a headroom; where the largest contiguous block is smaller than the total it is
recorded and used instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from tfnas.objectives.constraints import Constraints

__all__ = ["Device", "DEVICES", "get_device"]

KIB = 1024


@dataclass(frozen=True)
class Device:
    """A board: memory sizes, core and the TFLM target whose memory rules apply."""

    name: str
    mcu: str
    core: str
    clock_mhz: int
    sram_bytes: int
    flash_bytes: int
    target: str = "cortex-m-cmsis"
    contiguous_sram_bytes: int | None = None

    def budget(
        self,
        *,
        ram_headroom: int | float = 0.25,
        flash_headroom: int | float = 0.25,
        max_macs: int | None = None,
        max_latency_ms: float | None = None,
    ) -> Constraints:
        """Constraints for a model on this board.

        Parameters
        ----------
        ram_headroom, flash_headroom:
            What the application keeps for itself: a fraction of the memory
            (``0.25``) or a number of bytes (``40_000``).
        max_macs, max_latency_ms:
            Optional compute bounds.

        Returns
        -------
        Constraints
            The arena bound is the whole TFLM arena (planned plus persistent)
            on this board's target; latency is modelled on this board.
        """
        ram = self.contiguous_sram_bytes or self.sram_bytes
        return Constraints(
            max_arena_bytes=_after_headroom(ram, ram_headroom, "ram_headroom"),
            max_flash_bytes=_after_headroom(self.flash_bytes, flash_headroom, "flash_headroom"),
            max_macs=max_macs,
            max_latency_ms=max_latency_ms,
            arena="total",
            target=self.target,
            device=self.name,
        )


def _after_headroom(total: int, headroom: int | float, name: str) -> int:
    if isinstance(headroom, float):
        if not 0.0 <= headroom < 1.0:
            raise ValueError(f"{name} as a fraction must be in [0, 1). Received: {name}={headroom}")
        return int(total * (1.0 - headroom))
    if not 0 <= headroom < total:
        raise ValueError(f"{name} in bytes must be in [0, {total}). Received: {name}={headroom}")
    return total - headroom


DEVICES: dict[str, Device] = {
    d.name: d
    for d in [
        Device("arduino-nano-33-ble-sense", "nRF52840", "Cortex-M4F", 64, 256 * KIB, 1024 * KIB),
        Device("stm32f446re", "STM32F446RE", "Cortex-M4F", 180, 128 * KIB, 512 * KIB),
        Device("stm32f746zg", "STM32F746ZG", "Cortex-M7", 216, 320 * KIB, 1024 * KIB),
        # 1 MB of RAM in several blocks; the largest contiguous one is the 512 KB AXI SRAM.
        Device(
            "stm32h743",
            "STM32H743ZI",
            "Cortex-M7",
            480,
            1024 * KIB,
            2048 * KIB,
            contiguous_sram_bytes=512 * KIB,
        ),  # fmt: skip
        # Xtensa LX7, not a Cortex-M: TFLM's 32-bit reference struct sizes are the closest model.
        Device(
            "esp32-s3",
            "ESP32-S3 (8 MB flash module)",
            "Xtensa LX7",
            240,
            512 * KIB,
            8192 * KIB,
            target="cortex-m",
        ),  # fmt: skip
        # NXP FRDM-MCXN947: the board of the public TFLM cycle counts that calibrate the latency
        # model (docs/latency.md). Cortex-M33 with the DSP extension, CMSIS-NN's DSP path.
        Device("frdm-mcxn947", "MCXN947", "Cortex-M33", 150, 512 * KIB, 2048 * KIB),
        # Cortex-M0+ has no DSP extension: CMSIS-NN's DSP paths do not apply.
        Device(
            "raspberry-pi-pico",
            "RP2040",
            "Cortex-M0+",
            133,
            264 * KIB,
            2048 * KIB,
            target="cortex-m",
        ),  # fmt: skip
    ]
}


def get_device(name: str) -> Device:
    """Look a board up by name (see ``DEVICES``)."""
    if name not in DEVICES:
        raise ValueError(f"Unknown device. Expected one of {sorted(DEVICES)}. Received: {name!r}")
    return DEVICES[name]
