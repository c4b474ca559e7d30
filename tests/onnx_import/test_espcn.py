"""QONNX's Brevitas-trained ESPCN super-resolution models (``qonnx`` ships
them: ``bsd300x3-espcn/{subpixel,nn_resize}/quant_model.onnx``, 8-bit input
and output, 4-bit hidden activations and weights, 8-bit first and last
weights) after QONNX's ``QuantToQCDQ``: they import, run, and equal ONNX
Runtime bit for bit under the ONNX Runtime profile -- the final uint8 codes
and every float intermediate (Conv, BatchNormalization outputs).

ONNX Runtime fuses none of their groups (float biases, BatchNormalization
between Conv and QuantizeLinear, a DepthToSpace before the last
QuantizeLinear): every Conv runs as MLAS's float32 im2col SGEMM, which
qnnref's float_conv2d reproduces operation by operation
(spec/ops/float_conv2d.md). Inputs are crops of the bundled test image
(8x8: MLAS K blocks of 256; 16x16: of 128), to keep the tests fast."""
from __future__ import annotations

import functools
import os
import warnings

import numpy as np
import pytest

from onnx_helpers import ops_of, ort  # noqa: F401  (skips without onnx / onnxruntime)

import onnx  # noqa: E402
from onnx import numpy_helper  # noqa: E402

from qnnref.onnx import import_onnx  # noqa: E402

qonnx = pytest.importorskip("qonnx", reason="the ESPCN models come with the qonnx package (pip install qonnx)")

VARIANTS = ["subpixel", "nn_resize"]
#: the profile matching this machine's ONNX Runtime (no integer convolution
#: runs in these models, so ort-cpu-x86 gives the same bits)
PROFILE = "ort-cpu-x86-vnni"
OUT_STEP = np.float32(1 / 255)          # the output QuantizeLinear's scale (0.003921568859368563)


def data_path(*parts) -> str:
    path = os.path.join(os.path.dirname(qonnx.__file__), "data", "onnx", "bsd300x3-espcn", *parts)
    if not os.path.exists(path):
        pytest.skip(f"qonnx does not ship {path}")
    return path


@functools.lru_cache(maxsize=None)
def qcdq_bytes(variant: str) -> bytes:
    """The model after QONNX's cleanup and QuantToQCDQ (Quant -> QuantizeLinear
    -> Clip -> DequantizeLinear)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.qonnx_to_qcdq import QuantToQCDQ
    from qonnx.util.cleanup import cleanup_model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = cleanup_model(cleanup_model(ModelWrapper(data_path(variant, "quant_model.onnx"))).transform(QuantToQCDQ()))
    return m.model.SerializeToString()


def cropped(variant: str, size: int, extra_outputs=()) -> onnx.ModelProto:
    """The QCDQ model with a size x size input (and, optionally, intermediate
    values as extra graph outputs)."""
    m = onnx.load_from_string(qcdq_bytes(variant))
    dims = m.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_value = dims[3].dim_value = size
    del m.graph.value_info[:]
    for o in m.graph.output:
        o.type.tensor_type.ClearField("shape")
    for name in extra_outputs:
        m.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    return m


@functools.lru_cache(maxsize=None)
def bundled_image() -> np.ndarray:
    return numpy_helper.to_array(onnx.load_tensor(data_path("test_data", "input_0.pb")))


def crop(size: int, top: int = 40, left: int = 50) -> np.ndarray:
    return np.ascontiguousarray(bundled_image()[:, :, top:top + size, left:left + size])


def run_ort(model: onnx.ModelProto, x: np.ndarray, threads: int = 1) -> dict:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"global_in": x})))


@pytest.mark.parametrize("variant", VARIANTS)
def test_espcn_imports_as_float_convolutions(variant):
    """What ONNX Runtime leaves in float is float here: every Conv (with its
    BatchNormalization as a float mul + add); the 4-bit activations are
    QuantizeLinear -> integer clamp -> DequantizeLinear; nearest Resize and
    DepthToSpace move dequantized integers or floats."""
    m = import_onnx(cropped(variant, 8), profile=PROFILE)
    ops = ops_of(m)
    assert "conv2d" not in ops
    assert ops.count("float_conv2d") == 4 and ops.count("float_elementwise") == 6     # 3 BatchNormalizations
    assert ops.count("clamp") >= 2 and "quantize" in ops and "dequantize" in ops
    convs = [n for n in m.graph.nodes if n.op == "float_conv2d"]
    # MLAS's K blocks: K = 3*5*5 = 75 is one block; K = 64*3*3 on 8x8 = 64 pixels: 256
    assert convs[0].attrs["k_block"] == 0 and convs[1].attrs["k_block"] == 256


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("size", [8, 16])
def test_espcn_matches_onnx_runtime_exactly(variant, size):
    x = crop(size)
    want = run_ort(cropped(variant, size), x)["global_out"]
    got = import_onnx(cropped(variant, size), profile=PROFILE).run({"global_in": x})["global_out"]
    assert got.shape == (1, 3, 2 * size, 2 * size)
    np.testing.assert_array_equal(got, want)
    codes = np.rint(got / OUT_STEP)
    assert len(np.unique(codes)) > 20                  # a real image, not a constant


@pytest.mark.parametrize("variant", VARIANTS)
def test_espcn_float_intermediates_are_bit_identical(variant):
    """Each Conv and BatchNormalization output, read through
    metadata["source"]["tensors"] (NHWC -> NCHW), equals ONNX Runtime's."""
    base = cropped(variant, 8)
    names = [n.output[0] for n in base.graph.node if n.op_type in ("Conv", "BatchNormalization")]
    x = crop(8, 60, 20)
    want = run_ort(cropped(variant, 8, names), x)
    m = import_onnx(base, profile=PROFILE)
    got = m.run({"global_in": x}, capture=True)
    where = m.metadata["source"]["tensors"]
    for name in names:
        entry = where.get(name, {"tensor": name})
        value = got[entry["tensor"]]
        if "perm" in entry:
            value = np.transpose(value, np.argsort(entry["perm"]))
        np.testing.assert_array_equal(value.view(np.int32), want[name].view(np.int32), err_msg=name)


def test_espcn_other_thread_counts_agree():
    """MLAS splits the output pixels among threads: with shares above 64
    pixels its K blocks do not change (a 16x16 crop: 256 pixels)."""
    x = crop(16)
    model = cropped("subpixel", 16)
    got = import_onnx(model, profile=PROFILE).run({"global_in": x})["global_out"]
    for threads in (2, 0):
        np.testing.assert_array_equal(got, run_ort(model, x, threads)["global_out"])


def test_espcn_profiles_without_ort_fuse_through_depth_to_space():
    """Under the other profiles the last Conv of ``subpixel`` (Conv ->
    DepthToSpace -> Relu -> QuantizeLinear, no bias) is an integer conv2d:
    exact by qnnref's own definition, but not ONNX Runtime's float
    arithmetic (near rounding ties it can land one step away)."""
    model = cropped("subpixel", 8)
    ops = ops_of(import_onnx(model, profile="onnx"))
    assert ops.count("conv2d") == 1 and ops.count("float_conv2d") == 3
    x = crop(8)
    got = import_onnx(model, profile="onnx").run({"global_in": x})["global_out"]
    want = run_ort(model, x)["global_out"]
    assert np.abs(np.rint((got.astype(np.float64) - want) / OUT_STEP)).max() <= 1
