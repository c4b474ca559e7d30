"""The in-memory graph: tensors, quantization parameters, nodes, metadata.

These plain dataclasses are what the file format reads and writes
(qnnref/format.py), what the builder creates (qnnref/builder.py) and what
the interpreter runs (qnnref/interpreter.py). They hold no behaviour beyond
structural checks; operator semantics live in qnnref/ops/.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import dtypes
from .errors import FormatError, ValidationError


@dataclass
class Quant:
    """Quantization parameters of one tensor: ``real = scale * (q - zero_point)``.

    Three granularities (spec/format.md, "Quantization"):

    * per-tensor: ``axis is None``; ``scale`` and ``zero_point`` have shape ().
    * per-axis:   ``axis`` set, ``block_size is None``; both have shape (D[axis],).
    * blocked:    ``axis`` and ``block_size`` set; both have the tensor's rank,
      with ``ceil(D[axis] / block_size)`` at ``axis`` and D[i] elsewhere.

    ``scale`` is float32 (float16 is allowed for blocked quantization).
    ``zero_point`` has the tensor's storage dtype (its in-memory numpy dtype)
    or is ``None``: symmetric quantization, i.e. all zero points 0.
    """

    scale: np.ndarray
    zero_point: np.ndarray | None = None
    axis: int | None = None
    block_size: int | None = None

    @property
    def granularity(self) -> str:
        if self.axis is None:
            return "per-tensor"
        return "per-axis" if self.block_size is None else "blocked"

    @property
    def symmetric(self) -> bool:
        return self.zero_point is None or not np.any(self.zero_point)

    def zero_point_or_zeros(self) -> np.ndarray:
        """The zero points as int32, zeros where absent (shape of ``scale``)."""
        if self.zero_point is None:
            return np.zeros(self.scale.shape, np.int32)
        return self.zero_point.astype(np.int32)

    def broadcast_shape(self, rank: int) -> tuple[int, ...]:
        """Shape to which scale / zero point reshape to broadcast against a
        tensor of rank ``rank`` (per-tensor and per-axis only)."""
        if self.axis is None:
            return ()
        if self.block_size is not None:
            raise ValueError("blocked quantization does not broadcast; expand it")
        shape = [1] * rank
        shape[self.axis] = self.scale.shape[0]
        return tuple(shape)

    def expanded(self, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Scale (float32) and zero point (int32) expanded to broadcast with a
        tensor of ``shape``, for any granularity."""
        scale = self.scale.astype(np.float32)
        zp = self.zero_point_or_zeros()
        if self.axis is None:
            return scale, zp
        if self.block_size is None:
            bshape = self.broadcast_shape(len(shape))
            return scale.reshape(bshape), zp.reshape(bshape)
        # blocked: repeat each block's parameter block_size times along axis,
        # then cut to the tensor's length (the last block may be short).
        n = shape[self.axis]
        idx = np.arange(n) // self.block_size
        return np.take(scale, idx, axis=self.axis), np.take(zp, idx, axis=self.axis)

    def check(self, dtype: dtypes.DType, shape: tuple[int, ...], where: str) -> None:
        """Raise ValidationError unless these parameters fit a tensor."""
        if not dtype.is_int:
            raise ValidationError(f"{where}: float tensor of dtype {dtype} cannot be quantized")
        scale = self.scale
        if not isinstance(scale, np.ndarray) or scale.dtype not in (np.float32, np.float16):
            raise ValidationError(f"{where}: scale must be a float32 array")
        if scale.dtype == np.float16 and self.block_size is None:
            raise ValidationError(f"{where}: float16 scales are allowed only for blocked quantization")
        rank = len(shape)
        if self.axis is None:
            if self.block_size is not None:
                raise ValidationError(f"{where}: block_size needs an axis")
            if scale.shape != ():
                raise ValidationError(f"{where}: per-tensor scale must be a scalar, got shape {scale.shape}")
        else:
            if not isinstance(self.axis, int) or not 0 <= self.axis < rank:
                raise ValidationError(f"{where}: quantization axis {self.axis!r} out of range for rank {rank}")
            if self.block_size is None:
                want = (shape[self.axis],)
            else:
                if not isinstance(self.block_size, int) or self.block_size < 1:
                    raise ValidationError(f"{where}: block_size must be a positive integer, got {self.block_size!r}")
                want = list(shape)
                want[self.axis] = -(-shape[self.axis] // self.block_size)
                want = tuple(want)
            if scale.shape != want:
                raise ValidationError(f"{where}: {self.granularity} scale must have shape {want}, got {scale.shape}")
        with np.errstate(invalid="ignore"):
            ok = np.all(np.isfinite(scale)) and np.all(scale > 0)
        if not ok:
            raise ValidationError(f"{where}: scales must be finite and > 0")
        if self.zero_point is not None:
            zp = self.zero_point
            if not isinstance(zp, np.ndarray) or zp.shape != scale.shape:
                raise ValidationError(f"{where}: zero_point must have the scale's shape {scale.shape}")
            if not dtypes.check_array(zp, dtype):
                raise ValidationError(f"{where}: zero_point must be {dtype} values (in memory {dtype.numpy})")


@dataclass
class TensorInfo:
    """A named tensor: its type and, for constants, its data."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    quant: Quant | None = None
    data: np.ndarray | None = None   # constants only (weights, biases, tables)

    @property
    def dt(self) -> dtypes.DType:
        return dtypes.get(self.dtype, f"tensor {self.name!r}")

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    def describe(self) -> str:
        """Short text such as ``int8[1,8,8,1] q(s=0.0078, zp=-128)``."""
        text = f"{self.dtype}[{','.join(map(str, self.shape))}]"
        q = self.quant
        if q is not None:
            if q.axis is None:
                zp = int(q.zero_point) if q.zero_point is not None else 0
                text += f" q(s={float(q.scale):.6g}, zp={zp})"
            elif q.block_size is None:
                text += f" q(per-axis {q.axis}, {q.scale.size} scales)"
            else:
                text += f" q(blocked axis {q.axis}, block {q.block_size})"
        return text


@dataclass
class Node:
    """One operator application. ``inputs`` are tensor names in the operator's
    slot order ("" for an absent optional input); ``outputs`` likewise."""

    name: str
    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Graph:
    """A whole model: tensors, nodes in topological order, inputs, outputs."""

    tensors: dict[str, TensorInfo]
    nodes: list[Node]
    inputs: list[str]
    outputs: list[str]
    metadata: dict[str, Any] = field(default_factory=dict)

    def check_structure(self, where: str = "model") -> None:
        """Structural checks: every name is defined once, nothing dangles,
        nodes are acyclic and in topological order. Raises FormatError."""
        names = set(self.tensors)
        for t_name, t in self.tensors.items():
            if t.name != t_name:
                raise FormatError(f"{where}: tensor table key {t_name!r} != tensor name {t.name!r}")
        node_names = set()
        produced: dict[str, str] = {}
        for n in self.nodes:
            if n.name in node_names:
                raise FormatError(f"{where}: duplicate node name {n.name!r}")
            node_names.add(n.name)
            for o in n.outputs:
                if o not in names:
                    raise FormatError(f"{where}: node {n.name!r} output {o!r} is not a declared tensor")
                if o in produced:
                    raise FormatError(f"{where}: tensor {o!r} is produced by both {produced[o]!r} and {n.name!r}")
                if o in self.inputs or self.tensors[o].is_constant:
                    raise FormatError(f"{where}: node {n.name!r} writes {o!r}, which is a graph input or constant")
                produced[o] = n.name
        for i in self.inputs:
            if i not in names:
                raise FormatError(f"{where}: graph input {i!r} is not a declared tensor")
            if self.tensors[i].is_constant:
                raise FormatError(f"{where}: graph input {i!r} is a constant")
        if len(set(self.inputs)) != len(self.inputs):
            raise FormatError(f"{where}: a graph input is listed twice")
        # Topological order: every input of a node must be available before it.
        # A node that reads a tensor produced later (or by itself) closes a cycle
        # or breaks the order; both are refused with the names involved.
        available = set(self.inputs) | {k for k, t in self.tensors.items() if t.is_constant}
        for n in self.nodes:
            for i in n.inputs:
                if i == "":
                    continue
                if i not in names:
                    raise FormatError(f"{where}: node {n.name!r} reads undeclared tensor {i!r}")
                if i not in available:
                    if i in produced:
                        raise FormatError(
                            f"{where}: node {n.name!r} reads {i!r} before node {produced[i]!r} produces it "
                            "(nodes must be in topological order; the graph may contain a cycle)")
                    raise FormatError(f"{where}: node {n.name!r} reads {i!r}, which no node produces "
                                      "and which is neither a graph input nor a constant")
            available.update(n.outputs)
        for o in self.outputs:
            if o not in available:
                raise FormatError(f"{where}: graph output {o!r} is never produced")
