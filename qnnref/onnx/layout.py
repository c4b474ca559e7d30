"""Layouts and geometry: how ONNX's NCHW tensors live in qnnref's NHWC operators.

A qnnref tensor holding an ONNX value carries a permutation ``perm``:
qnnref axis i is ONNX axis ``perm[i]`` (so the qnnref array is
``onnx_array.transpose(perm)``). Convolutions and pools need
``NHWC = (0, 2, 3, 1)``; elementwise and reduction operators work in any
layout, so a value stays NHWC from one convolution to the next and is
transposed back only where an operator needs ONNX's axis order (Reshape,
Flatten, MatMul, a graph output, ...).
"""
from __future__ import annotations

from .. import graph as qgraph
from .reader import OnnxNode, Refused


def identity(rank: int) -> tuple[int, ...]:
    return tuple(range(rank))


def nhwc(rank: int) -> tuple[int, ...]:
    """Channels last: (0, 2, 3, ..., 1)."""
    return (0, *range(2, rank), 1)


def is_identity(perm) -> bool:
    return tuple(perm) == tuple(range(len(perm)))


def transpose_between(src: tuple[int, ...], dst: tuple[int, ...]) -> tuple[int, ...]:
    """The transpose ``t`` with ``A.transpose(t)`` in layout ``dst`` when A is in ``src``."""
    return tuple(src.index(a) for a in dst)


def onnx_shape(qshape, perm) -> tuple[int, ...]:
    """The ONNX shape of a qnnref tensor of shape ``qshape`` in layout ``perm``."""
    out = [0] * len(perm)
    for i, a in enumerate(perm):
        out[a] = qshape[i]
    return tuple(int(d) for d in out)


def permute(values, perm) -> list:
    """ONNX-ordered per-axis values (one per ONNX axis) in qnnref axis order."""
    return [values[a] for a in perm]


def keeps_order(shape, perm) -> bool:
    """True when a tensor of ONNX shape ``shape`` in layout ``perm`` has the
    same row-major element order as in ONNX layout: the axes longer than 1
    appear in increasing ONNX order (only length-1 axes moved). Then a reshape
    can read it without a transpose first."""
    big = [a for a in perm if shape[a] != 1]
    return big == sorted(big)


def normalize_axis(axis: int, rank: int, where: str) -> int:
    if not -rank <= axis < rank:
        raise Refused(f"{where}: axis {axis} is out of range for rank {rank}")
    return axis % rank


# ---------------------------------------------------------------------------
# Convolution and pooling geometry (ONNX attributes -> qnnref attributes)
# ---------------------------------------------------------------------------

def spatial_pads(node: OnnxNode, in_hw, kernel, strides, dilations) -> list[int]:
    """qnnref pads ``[top, left, bottom, right]`` from ONNX ``auto_pad`` / ``pads``
    (ONNX orders pads ``[x1_begin, x2_begin, x1_end, x2_end]``: the same)."""
    auto = node.attr("auto_pad", "NOTSET")
    if auto in ("NOTSET", ""):
        pads = list(node.attr("pads", [0, 0, 0, 0]))
        if len(pads) != 4:
            raise Refused(f"{node.where()}: pads {pads} must have 4 values for a 2-D window")
        return pads
    if auto == "VALID":
        return [0, 0, 0, 0]
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        raise Refused(f"{node.where()}: unknown auto_pad {auto!r}")
    begin, end = [], []
    for size, k, s, d in zip(in_hw, kernel, strides, dilations):
        out = -(-size // s)
        total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
        small, big = total // 2, total - total // 2
        begin.append(small if auto == "SAME_UPPER" else big)
        end.append(big if auto == "SAME_UPPER" else small)
    return [begin[0], begin[1], end[0], end[1]]


def _check_ints(node: OnnxNode, name: str, values, count: int, low: int) -> None:
    """Refused unless ``values`` (attribute ``name``) are ``count`` integers in [low, MAX_DIM]."""
    if len(values) != count or any(not isinstance(v, int) or not low <= v <= qgraph.MAX_DIM for v in values):
        raise Refused(f"{node.where()}: attribute {name!r} must be {count} integers in [{low}, {qgraph.MAX_DIM}] "
                      f"for a 2-D window, got {list(values)[:8]}")


def _check_output(node: OnnxNode, in_shape, kernel, strides, dilations, pads) -> None:
    """Refused unless every output axis has at least one window and the
    output windows (N x OH x OW) are within qnnref's size limit:
    checked before anything of that size is computed."""
    count = in_shape[0]
    for i in range(2):
        span = dilations[i] * (kernel[i] - 1) + 1
        out = (in_shape[2 + i] + pads[i] + pads[i + 2] - span) // strides[i] + 1
        if out < 1:
            raise Refused(f"{node.where()}: the window ({span} with dilation) does not fit the padded input "
                          f"along spatial axis {i}")
        count *= out
    qgraph.check_element_count(count, f"{node.where()}: output windows")


def window_geometry(node: OnnxNode, onnx_in_shape, kernel=None, pool: bool = False) -> dict:
    """qnnref ``strides``, ``dilations``, ``pads`` (and ``kernel`` for pools) of
    a 2-D ONNX Conv / pool node on an NCHW input of shape ``onnx_in_shape``.
    ``ceil_mode`` is honoured by extra padding at the end when every window
    still starts inside the input (qnnref pools have no ceil mode)."""
    if len(onnx_in_shape) != 4:
        raise Refused(f"{node.where()}: only 2-D windows (NCHW inputs) are supported, "
                      f"the input has rank {len(onnx_in_shape)}")
    if kernel is None:
        kernel = node.attr("kernel_shape")
        if kernel is None:
            raise Refused(f"{node.where()}: kernel_shape is required")
    kernel = list(kernel)
    if len(kernel) != 2:
        raise Refused(f"{node.where()}: only 2-D windows are supported (kernel {kernel})")
    strides = list(node.attr("strides", [1, 1]))
    dilations = list(node.attr("dilations", [1, 1]))
    _check_ints(node, "kernel_shape", kernel, 2, 1)
    _check_ints(node, "strides", strides, 2, 1)
    _check_ints(node, "dilations", dilations, 2, 1)
    hw = onnx_in_shape[2:]
    pads = spatial_pads(node, hw, kernel, strides, dilations)
    _check_ints(node, "pads", pads, 4, 0)
    if pool and node.attr("ceil_mode", 0):
        for i in range(2):
            size = hw[i] + pads[i] + pads[i + 2]
            span = dilations[i] * (kernel[i] - 1) + 1
            floor_out = (size - span) // strides[i] + 1
            ceil_out = -(-(size - span) // strides[i]) + 1
            # the last window starts at (ceil_out - 1) * stride - pad_begin; one that
            # starts in the end padding is dropped (ONNX Runtime, PyTorch, and the
            # ONNX spec's output-shape note)
            if ceil_out > floor_out and (ceil_out - 1) * strides[i] - pads[i] >= hw[i]:
                ceil_out -= 1
            if ceil_out > floor_out:
                pads[i + 2] += (ceil_out - 1) * strides[i] + span - size
    _check_output(node, onnx_in_shape, kernel, strides, dilations, pads)
    out = {"strides": strides, "dilations": dilations, "pads": pads}
    if pool:
        out["kernel"] = kernel
    return out
