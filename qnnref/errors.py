"""The exceptions qnnref raises.

Every error qnnref raises on bad input is a :class:`QnnError`. The message
names what is wrong and, where known, the file, node and tensor involved.
"""


class QnnError(Exception):
    """Base class of every qnnref error."""


class FormatError(QnnError):
    """A .qnn file (or its header) is malformed: bad magic, truncated data,
    digest mismatch, bad JSON, out-of-bounds blob, unknown dtype, ..."""


class ValidationError(QnnError):
    """A graph is well-formed as a file but invalid as a model: unknown
    operator, wrong dtype or shape, bad attribute, bad quantization, ...
    (the spec's ERROR_IF conditions)."""


class RuntimeCheckError(QnnError):
    """A runtime precondition failed while running a valid model: wrong input
    dtype or shape, int32 accumulator overflow, ... (the spec's REQUIRE
    conditions)."""


class CrossCheckError(QnnError):
    """The ``cross-check`` backend found a node whose kernel output differs
    from the reference's (a bug in qnnref: please report it with the message)."""


class ReadOnlyError(QnnError, TypeError):
    """An attempt to change a loaded Model's graph (its kernels were prepared
    for it): change a copy, ``g = model.graph.copy()``, and build a new Model."""
