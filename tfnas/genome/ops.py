"""The operations a genome node, a downsampling module and a head may use.

Each op is described by an :class:`OpSpec`: which parameters it takes, which
values are allowed, and how it transforms a shape ``(height, width, channels)``.
For 1-D inputs the width is 1 and every kernel and stride acts on the height
only (the model builder uses ``(k, 1)`` kernels), so one set of rules covers
both.

Cost convention (used everywhere in tfnas): a multiply-add is one MAC.
Convolutions, depthwise convolutions and dense layers count MACs; BatchNorm and
ReLU count none (the TFLite converter folds them into the convolution); pooling,
concatenation and addition count no MACs either, because they do no
multiplication by weights. Parameter counts follow Keras ``count_params()``: a
BatchNorm has four parameters per channel (two of them non-trainable).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tfnas.errors import SearchSpaceError

__all__ = [
    "OpSpec",
    "NODE_OPS",
    "DOWNSAMPLE_OPS",
    "HEAD_POOLS",
    "MERGES",
    "MAX_CHANNELS",
    "MAX_UNITS",
    "parse_op_choice",
    "node_output_shape",
    "node_params",
    "node_macs",
]

MAX_CHANNELS = 2048
MAX_UNITS = 4096
MERGES = ("concat", "add")
HEAD_POOLS = ("gap", "flatten")
DOWNSAMPLE_OPS = ("maxpool", "avgpool", "conv", "none")


@dataclass(frozen=True)
class OpSpec:
    """What a node op accepts.

    Attributes
    ----------
    name:
        The op's name in genomes and JSON.
    kernels:
        Allowed kernel sizes; empty when the op has no kernel.
    has_channels:
        Whether the op sets its own output channel count.
    strides:
        Allowed strides; empty when the op has no stride.
    """

    name: str
    kernels: tuple[int, ...] = ()
    has_channels: bool = False
    strides: tuple[int, ...] = ()

    @property
    def param_names(self) -> tuple[str, ...]:
        names = []
        if self.kernels:
            names.append("kernel")
        if self.has_channels:
            names.append("channels")
        if self.strides:
            names.append("stride")
        return tuple(names)


NODE_OPS: dict[str, OpSpec] = {
    "conv": OpSpec("conv", kernels=(1, 3, 5, 7), has_channels=True, strides=(1, 2)),
    "sepconv": OpSpec("sepconv", kernels=(3, 5, 7), has_channels=True, strides=(1, 2)),
    "dwconv": OpSpec("dwconv", kernels=(3, 5, 7), strides=(1, 2)),
    "maxpool": OpSpec("maxpool", kernels=(2, 3), strides=(1, 2)),
    "avgpool": OpSpec("avgpool", kernels=(2, 3), strides=(1, 2)),
    "identity": OpSpec("identity"),
}


def parse_op_choice(choice: str) -> dict:
    """Turn a choice-list entry such as ``"sepconv3x3"`` into node attributes.

    Parameters
    ----------
    choice:
        An op name followed by ``KxK`` for ops with a kernel (``"conv1x1"``,
        ``"dwconv5x5"``, ``"maxpool3x3"``) or a bare op name (``"identity"``).

    Returns
    -------
    dict
        ``{"op": name, "kernel": k}`` (no kernel key for kernel-less ops).

    Raises
    ------
    SearchSpaceError
        If the op is unknown or the kernel is not allowed for it.

    Examples
    --------
    >>> parse_op_choice("conv3x3")
    {'op': 'conv', 'kernel': 3}
    """
    for name in sorted(NODE_OPS, key=len, reverse=True):
        spec = NODE_OPS[name]
        if not choice.startswith(name):
            continue
        rest = choice[len(name) :]
        if not spec.kernels:
            if rest:
                break
            return {"op": name}
        parts = rest.split("x")
        if len(parts) == 2 and parts[0].isdigit() and parts[0] == parts[1]:
            kernel = int(parts[0])
            if kernel not in spec.kernels:
                raise SearchSpaceError(
                    f"Op choice {choice!r} has a kernel that {name} does not allow. "
                    f"Expected one of {list(spec.kernels)}. Received: kernel={kernel}"
                )
            return {"op": name, "kernel": kernel}
        break
    raise SearchSpaceError(
        "Unknown op choice. Expected an op name from "
        f"{sorted(NODE_OPS)} followed by KxK where it has a kernel (e.g. 'sepconv3x3'). "
        f"Received: {choice!r}"
    )


def _strided(size: int, stride: int) -> int:
    # 'same' padding: ceil(size / stride), never zero for a positive size.
    return math.ceil(size / stride)


def node_output_shape(attrs: dict, shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """Output shape of a node op applied to its merged input ``shape`` (H, W, C)."""
    h, w, c = shape
    op = attrs["op"]
    stride = attrs.get("stride", 1)
    sw = stride if w > 1 else 1
    if op in ("conv", "sepconv"):
        return (_strided(h, stride), _strided(w, sw), attrs["channels"])
    if op in ("dwconv", "maxpool", "avgpool"):
        return (_strided(h, stride), _strided(w, sw), c)
    return (h, w, c)


def _kernel_area(kernel: int, one_d: bool) -> int:
    return kernel if one_d else kernel * kernel


def node_params(attrs: dict, in_channels: int, one_d: bool) -> int:
    """Parameters of a node op (Keras ``count_params`` convention, BN included)."""
    op = attrs["op"]
    if op == "conv":
        c = attrs["channels"]
        return _kernel_area(attrs["kernel"], one_d) * in_channels * c + 4 * c
    if op == "sepconv":
        c = attrs["channels"]
        area = _kernel_area(attrs["kernel"], one_d)
        return area * in_channels + 4 * in_channels + in_channels * c + 4 * c
    if op == "dwconv":
        return _kernel_area(attrs["kernel"], one_d) * in_channels + 4 * in_channels
    return 0


def node_macs(attrs: dict, in_channels: int, out_shape: tuple[int, int, int], one_d: bool) -> int:
    """MACs of a node op given its input channels and output shape."""
    op = attrs["op"]
    h, w, c = out_shape
    pixels = h * w
    if op == "conv":
        return _kernel_area(attrs["kernel"], one_d) * in_channels * c * pixels
    if op == "sepconv":
        return (_kernel_area(attrs["kernel"], one_d) * in_channels + in_channels * c) * pixels
    if op == "dwconv":
        return _kernel_area(attrs["kernel"], one_d) * in_channels * pixels
    return 0
