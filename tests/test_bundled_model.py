"""The bundled model ``digits`` (qnnref/data/digits.qnn) and its held-out
test set (qnnref/data/digits_test.npz), made by tools/make_digits_model.py.

The golden logits catch any change of integer semantics in the operators
the model uses (conv2d, mean, reshape, matmul) or in the requantization and
quantize recipes of the ``qnnref`` profile. If such a change is intended,
regenerate the files (tools/README.md) and say so in the commit.
"""
from __future__ import annotations

import os
from importlib import resources

import numpy as np
import pytest

import qnnref
from qnnref.arith import quantize_values

MAX_BYTES = 300 * 1024


@pytest.fixture(scope="module")
def model():
    return qnnref.load(qnnref.bundled_model("digits"))


@pytest.fixture(scope="module")
def test_set():
    return qnnref.bundled_test_set("digits")


def quantize_image(model, image):
    """float image [8, 8, 1] (pixel / 16) -> the model's int8 input [1, 8, 8, 1],
    with the input's scale/zero point and the profile's quantize recipe."""
    spec = model.inputs[0]
    recipe = qnnref.PROFILES[model.profile].quantize
    return quantize_values(np.asarray(image, np.float32)[None], spec.scale, spec.zero_point,
                           spec.dtype, recipe)


def logits_of(model, images):
    out = model.outputs[0].name
    return np.concatenate([model.run(quantize_image(model, img))[out] for img in images])


@pytest.fixture(scope="module")
def all_logits(model, test_set):
    images, _ = test_set
    return logits_of(model, images)


def test_files_are_packaged_and_small():
    data = resources.files("qnnref") / "data"
    qnn = data / "digits.qnn"
    npz = data / "digits_test.npz"
    assert qnnref.bundled_model("digits") == str(qnn)
    total = os.path.getsize(str(qnn)) + os.path.getsize(str(npz))
    assert total < MAX_BYTES, f"bundled model + test set are {total} bytes"


def test_model_interface(model):
    assert model.profile == "qnnref"
    (inp,), (out,) = model.inputs, model.outputs
    assert inp.dtype == "int8" and inp.shape == ("N", 8, 8, 1)      # a symbolic batch
    assert inp.quant is not None and inp.quant.axis is None
    assert out.dtype == "int8" and out.shape == ("N", 10)
    md = model.metadata
    assert md["dataset"] == "uci-digits (sklearn.datasets.load_digits)"
    for key in ("description", "split", "seed", "float_accuracy", "int8_accuracy", "training_script"):
        assert key in md, key
    assert sorted({n.op for n in model.graph.nodes}) == ["conv2d", "matmul", "mean", "reshape"]


def test_test_set(test_set):
    images, labels = test_set
    assert images.dtype == np.float32 and images.ndim == 4 and images.shape[1:] == (8, 8, 1)
    assert labels.shape == (images.shape[0],) and np.issubdtype(labels.dtype, np.integer)
    assert images.shape[0] >= 300
    assert images.min() >= 0.0 and images.max() <= 1.0
    # pixels are k / 16 (sklearn's 0..16 grey levels)
    assert np.array_equal(images * 16, np.round(images * 16))
    assert np.array_equal(np.unique(labels), np.arange(10))


def test_golden_logits(model, test_set, all_logits):
    """int8 logits of the first test images, bit for bit."""
    images, _ = test_set
    with np.load(str(resources.files("qnnref") / "data" / "digits_test.npz")) as z:
        golden = z["golden_logits"]
    assert golden.dtype == np.int8 and golden.shape == (5, 10)
    np.testing.assert_array_equal(logits_of(model, images[:5]), golden)
    np.testing.assert_array_equal(all_logits[:5], golden)


def test_all_logits(test_set, all_logits):
    """int8 logits of every test image, bit for bit (a wider net than the
    five golden images for semantic changes that rarely change a value)."""
    images, _ = test_set
    with np.load(str(resources.files("qnnref") / "data" / "digits_test.npz")) as z:
        stored = z["logits"]
    assert stored.dtype == np.int8 and stored.shape == (len(images), 10)
    mismatched = int((all_logits != stored).any(axis=1).sum())
    assert mismatched == 0, f"int8 logits differ on {mismatched} of {len(images)} test images"


def test_int8_accuracy_matches_metadata(model, test_set, all_logits):
    images, labels = test_set
    correct = int((all_logits.argmax(axis=1) == labels).sum())
    int8_accuracy = correct / len(labels)
    md = model.metadata
    assert int8_accuracy == float(md["int8_accuracy"])
    assert abs(int8_accuracy - float(md["float_accuracy"])) <= 0.01
    assert int8_accuracy >= 0.95


def test_run_is_deterministic(model, test_set, all_logits):
    images, _ = test_set
    again = logits_of(model, images[:20])
    np.testing.assert_array_equal(again, all_logits[:20])


@pytest.mark.parametrize("batch", [1, 4, 360])
def test_any_batch_gives_the_logits_of_batch_1(test_set, all_logits, batch):
    """The bundled model has a symbolic batch: the whole test set at once, or
    any batch size, gives every image the int8 logits it gets alone."""
    images, _ = test_set
    for backend in ["reference"] + (["kernels"] if qnnref.kernels_info()["built"] else []):
        model = qnnref.load(qnnref.bundled_model("digits"), backend=backend)
        assert model.batch_symbol == "N"
        x = model.quantize(model.inputs[0].name, images[:batch])
        np.testing.assert_array_equal(model.run(x)[model.outputs[0].name], all_logits[:batch])
