#!/usr/bin/env python3
"""Train, calibrate, quantize and write qnnref's bundled model ``digits``.

A small int8 CNN for the UCI handwritten digits (8x8 grey images, 10
classes), as shipped in ``qnnref/data/digits.qnn``, and its held-out test
set ``qnnref/data/digits_test.npz``.

Run from the repository root (see tools/README.md)::

    python tools/make_digits_model.py            # writes qnnref/data/digits.{qnn,_test.npz}
    python tools/make_digits_model.py --check    # rebuild in memory, compare with the files

Everything is numpy (plus scikit-learn, only for the data and the seeded
split); there is no torch dependency. All randomness comes from one seeded
``numpy.random.Generator``; training runs in float64, so re-running the
script on the same machine and numpy build writes byte-identical files.

Pipeline
--------
1. Data: ``sklearn.datasets.load_digits`` (1797 images, pixels 0..16),
   images scaled to [0, 1] (pixel / 16) as float32 NHWC [N, 8, 8, 1].
   A stratified, seeded split holds out 360 images (36 per class) which
   are used neither for training nor for calibration; they are the bundled
   test set.
2. Float model (NHWC, weights OHWI)::

       conv 3x3  1->16 stride 1 pad 1 + ReLU     8x8x16
       conv 3x3 16->32 stride 2 pad 1 + ReLU     4x4x32
       conv 3x3 32->32 stride 2 pad 1 + ReLU     2x2x32
       global mean over H, W                     1x1x32
       reshape [N, 32]                          (N: the symbolic batch)
       matmul 32->10 (+ bias)                    logits

   trained with Adam and softmax cross-entropy, with random +-1 pixel
   shifts as augmentation.
3. Post-training quantization:
   * weights: int8, symmetric, per output channel (conv: axis 0 of OHWI;
     matmul: axis 1 of [K, N]), scale = max|w| / 127;
   * biases: int32 = round(b / (s_x * s_w[c]));
   * activations: int8 per tensor, asymmetric, scale and zero point from
     the min/max over the training images (range widened to include 0);
     ReLU is fused into the convolutions as act_min = output zero point.
   The model input is int8 [1, 8, 8, 1] quantized from pixel / 16 with the
   input tensor's scale and zero point by the profile's quantize recipe
   (see ``quantize_image``).
4. Accuracy of the float model (float32 inference) and of the int8 qnnref
   model on the same 360 held-out images; the script fails if they differ
   by more than 1 percentage point. Both are stored in the model metadata
   (fractions in [0, 1]); the int8 logits of the first 5 test images are
   stored in the test set as ``golden_logits`` and those of all test images
   as ``logits``.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import os
import sys
import time
import zipfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

SEED = 20261126
N_TEST = 360
EPOCHS = 60
BATCH = 32
LR = 1e-2
N_GOLDEN = 5
# (name, C_in, C_out, stride) of the three 3x3 convolutions, padding 1
CONVS = (("conv1", 1, 16, 1), ("conv2", 16, 32, 2), ("conv3", 32, 32, 2))
N_CLASSES = 10
SCRIPT = "tools/make_digits_model.py"


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------

def load_data():
    """(x_train, y_train, x_test, y_test): float32 NHWC images in [0, 1],
    int64 labels. The split is stratified and seeded."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    d = load_digits()
    x = (d.images.astype(np.float32) / np.float32(16.0))[..., None]   # [N, 8, 8, 1]
    y = d.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=N_TEST, stratify=y,
                                              random_state=SEED % (2**32), shuffle=True)
    return x_tr, y_tr, x_te, y_te


# ---------------------------------------------------------------------------
# Float model (numpy): forward and backward
# ---------------------------------------------------------------------------

def im2col(x, stride, pad=1, k=3):
    """x [N, H, W, C] -> cols [N, OH, OW, k*k*C] (KH, KW, C order, as OHWI)."""
    n, h, w, c = x.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    oh = (h + 2 * pad - k) // stride + 1
    ow = (w + 2 * pad - k) // stride + 1
    cols = np.empty((n, oh, ow, k, k, c), x.dtype)
    for i in range(k):
        for j in range(k):
            cols[:, :, :, i, j, :] = xp[:, i:i + stride * oh:stride, j:j + stride * ow:stride, :]
    return cols.reshape(n, oh, ow, k * k * c)


def col2im(dcols, x_shape, stride, pad=1, k=3):
    """Adjoint of im2col."""
    n, h, w, c = x_shape
    oh, ow = dcols.shape[1:3]
    dcols = dcols.reshape(n, oh, ow, k, k, c)
    dxp = np.zeros((n, h + 2 * pad, w + 2 * pad, c), dcols.dtype)
    for i in range(k):
        for j in range(k):
            dxp[:, i:i + stride * oh:stride, j:j + stride * ow:stride, :] += dcols[:, :, :, i, j, :]
    return dxp[:, pad:pad + h, pad:pad + w, :]


def init_params(rng):
    """He-initialised float64 parameters: conv weights OHWI, fc weight [K, N]."""
    p = {}
    for name, cin, cout, _ in CONVS:
        fan_in = 9 * cin
        p[name + ".w"] = rng.normal(0.0, np.sqrt(2.0 / fan_in), (cout, 3, 3, cin))
        p[name + ".b"] = np.zeros(cout)
    k = CONVS[-1][2]
    p["fc.w"] = rng.normal(0.0, np.sqrt(1.0 / k), (k, N_CLASSES))
    p["fc.b"] = np.zeros(N_CLASSES)
    return p


def forward(p, x, keep=False):
    """Float forward pass in the dtype of ``x``. Returns logits, and with
    ``keep`` also every activation (for backward and calibration)."""
    acts = {"input": x}
    cache = []
    h = x
    for name, _, cout, stride in CONVS:
        cols = im2col(h, stride)
        w = p[name + ".w"].astype(x.dtype)
        z = cols @ w.reshape(cout, -1).T + p[name + ".b"].astype(x.dtype)
        cache.append((h.shape, cols, z))
        h = np.maximum(z, 0)
        acts[name] = h
    m = h.mean(axis=(1, 2))                              # [N, 32]
    acts["mean"] = m
    logits = m @ p["fc.w"].astype(x.dtype) + p["fc.b"].astype(x.dtype)
    acts["logits"] = logits
    if keep:
        return logits, acts, cache
    return logits


def loss_and_grads(p, x, y):
    logits, acts, cache = forward(p, x, keep=True)
    n = x.shape[0]
    z = logits - logits.max(axis=1, keepdims=True)
    prob = np.exp(z)
    prob /= prob.sum(axis=1, keepdims=True)
    loss = -np.log(prob[np.arange(n), y]).mean()
    g = {}
    d = prob
    d[np.arange(n), y] -= 1.0
    d /= n                                               # dL/dlogits
    g["fc.w"] = acts["mean"].T @ d
    g["fc.b"] = d.sum(axis=0)
    dm = d @ p["fc.w"].T                                 # [N, 32]
    last = acts[CONVS[-1][0]]
    hw = last.shape[1] * last.shape[2]
    dh = np.broadcast_to(dm[:, None, None, :] / hw, last.shape)
    for (name, _, cout, stride), (x_shape, cols, z) in zip(reversed(CONVS), reversed(cache)):
        dz = dh * (z > 0)
        dz2 = dz.reshape(-1, cout)
        g[name + ".w"] = (dz2.T @ cols.reshape(dz2.shape[0], -1)).reshape(p[name + ".w"].shape)
        g[name + ".b"] = dz2.sum(axis=0)
        if name != CONVS[0][0]:
            dcols = dz @ p[name + ".w"].reshape(cout, -1)
            dh = col2im(dcols, x_shape, stride)
    return loss, g


def augment(rng, x):
    """Random shifts by -1, 0 or +1 pixel in each direction, zero fill."""
    n = x.shape[0]
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    dy = rng.integers(0, 3, n)
    dx = rng.integers(0, 3, n)
    out = np.empty_like(x)
    for i in range(n):
        out[i] = xp[i, dy[i]:dy[i] + 8, dx[i]:dx[i] + 8, :]
    return out


def train(x, y, rng, log=print):
    """Adam on softmax cross-entropy, cosine-decayed learning rate."""
    p = init_params(rng)
    x = x.astype(np.float64)
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(v) for k, v in p.items()}
    b1, b2, eps = 0.9, 0.999, 1e-8
    t = 0
    n = x.shape[0]
    steps_per_epoch = -(-n // BATCH)
    total = EPOCHS * steps_per_epoch
    for epoch in range(EPOCHS):
        order = rng.permutation(n)
        xa = augment(rng, x[order])
        ya = y[order]
        losses = []
        for s in range(0, n, BATCH):
            lr = LR * 0.5 * (1 + np.cos(np.pi * t / total))
            t += 1
            loss, g = loss_and_grads(p, xa[s:s + BATCH], ya[s:s + BATCH])
            losses.append(loss)
            for k in p:
                m[k] = b1 * m[k] + (1 - b1) * g[k]
                v[k] = b2 * v[k] + (1 - b2) * g[k] ** 2
                mh = m[k] / (1 - b1 ** t)
                vh = v[k] / (1 - b2 ** t)
                p[k] = p[k] - lr * mh / (np.sqrt(vh) + eps)
        if epoch % 10 == 9 or epoch == EPOCHS - 1:
            acc = float_accuracy(p, x.astype(np.float32), y)
            log(f"  epoch {epoch + 1:3d}: loss {np.mean(losses):.4f}, train accuracy {acc:.4f}")
    return p


def float_predict(p, x):
    """Float32 inference of the trained model (the float baseline)."""
    p32 = {k: v.astype(np.float32) for k, v in p.items()}
    return forward(p32, x.astype(np.float32)).argmax(axis=1)


def float_accuracy(p, x, y):
    return int((float_predict(p, x) == y).sum()) / len(y)


# ---------------------------------------------------------------------------
# Post-training quantization
# ---------------------------------------------------------------------------

def calibrate(p, x):
    """Min/max of every activation over ``x`` (float64 inference)."""
    _, acts, _ = forward(p, x.astype(np.float64), keep=True)
    return {k: (float(v.min()), float(v.max())) for k, v in acts.items()}


def activation_qparams(lo: float, hi: float):
    """int8 per-tensor (scale, zero point) covering [lo, hi] widened to
    include 0 (so that 0 is exact: ReLU, padding). A range starting at 0
    gets zero point -128."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = np.float32((hi - lo) / 255.0)
    zp = int(np.clip(np.rint(-128.0 - lo / float(scale)), -128, 127))
    return scale, zp


def quantize_weights(w, axis):
    """Symmetric per-channel int8 on ``axis``: scale = max|w| / 127 (float32),
    q = round_half_even(w / scale) clipped to [-127, 127]."""
    other = tuple(i for i in range(w.ndim) if i != axis)
    amax = np.abs(w).max(axis=other)
    scale = (np.maximum(amax, 1e-12) / 127.0).astype(np.float32)
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.rint(w / scale.astype(np.float64).reshape(shape)), -127, 127).astype(np.int8)
    return q, scale


def quantize_bias(b, s_x, s_w):
    """int32 bias at scale s_x * s_w[c] (the float32 scales, multiplied in float64)."""
    real_scale = np.float64(s_x) * s_w.astype(np.float64)
    q = np.rint(b / real_scale)
    if np.abs(q).max() >= 2**31:
        raise SystemExit("bias does not fit int32")
    return q.astype(np.int32), real_scale.astype(np.float32)


def quantize_model(p, ranges):
    """All integer parameters and activation (scale, zero point)s."""
    act = {k: activation_qparams(*ranges[k]) for k in ("input", *[c[0] for c in CONVS], "mean", "logits")}
    q = {"act": act}
    prev = "input"
    for name, _, _, _ in CONVS:
        wq, sw = quantize_weights(p[name + ".w"], axis=0)
        bq, sb = quantize_bias(p[name + ".b"], act[prev][0], sw)
        q[name] = (wq, sw, bq, sb)
        prev = name
    wq, sw = quantize_weights(p["fc.w"], axis=1)
    bq, sb = quantize_bias(p["fc.b"], act["mean"][0], sw)
    q["fc"] = (wq, sw, bq, sb)
    return q


# ---------------------------------------------------------------------------
# The qnnref graph
# ---------------------------------------------------------------------------

def build_graph(q, metadata):
    """The quantized model as a qnnref Graph (validated by the builder)."""
    import qnnref
    act = q["act"]
    b = qnnref.GraphBuilder(profile="qnnref", description=metadata.pop("description"), **metadata)
    s, z = act["input"]
    h = b.input("image", "int8", ("N", 8, 8, 1), scale=s, zero_point=z)   # a symbolic batch
    for name, _, _, stride in CONVS:
        wq, sw, bq, sb = q[name]
        w = b.constant(f"{name}.weight", wq, scale=sw, axis=0)
        bias = b.constant(f"{name}.bias", bq, scale=sb, axis=0)
        s, z = act[name]
        h = b.node("conv2d", [h, w, bias],
                   attrs={"strides": [stride, stride], "pads": [1, 1, 1, 1], "act_min": z},
                   name=name, output=f"{name}.out", scale=s, zero_point=z)
    s, z = act["mean"]
    h = b.node("mean", [h], attrs={"axes": [1, 2], "keepdims": True},
               name="global_mean", output="global_mean.out", scale=s, zero_point=z)
    h = b.node("reshape", [h], attrs={"shape": [1, CONVS[-1][2]]},
               name="flatten", output="flatten.out", scale=s, zero_point=z)
    wq, sw, bq, sb = q["fc"]
    w = b.constant("fc.weight", wq, scale=sw, axis=1)
    bias = b.constant("fc.bias", bq, scale=sb, axis=0)
    s, z = act["logits"]
    y = b.node("matmul", [h, w, bias], name="fc", output="logits", scale=s, zero_point=z)
    b.output(y)
    return b.graph()


# ---------------------------------------------------------------------------
# Inference
# ---------------------------------------------------------------------------

def quantize_image(model, image):
    """A float image [8, 8, 1] (pixel / 16, in [0, 1]) as the model's int8
    input [1, 8, 8, 1]: the input's scale and zero point, the quantize
    recipe of the model's profile (qnnref: divide in float32, round half to
    even, saturate)."""
    import qnnref
    from qnnref.arith import quantize_values
    spec = model.inputs[0]
    recipe = qnnref.PROFILES[model.profile].quantize
    return quantize_values(np.asarray(image, np.float32)[None], spec.scale, spec.zero_point,
                           spec.dtype, recipe)


def qnnref_logits(model, images):
    """int8 logits [N, 10] of the qnnref model, one image at a time."""
    out = model.outputs[0].name
    return np.concatenate([model.run(quantize_image(model, img))[out] for img in images])


def integer_reference(q, x_int8):
    """An independent numpy re-implementation of the integer model (batched),
    written from the operator definitions with qnnref.arith's requantization
    primitives; used to cross-check the qnnref operators."""
    from qnnref.arith import combine_scales, prepare_requant, requantize_output
    import qnnref
    recipe = qnnref.PROFILES["qnnref"].requant
    act = q["act"]
    h = x_int8.astype(np.int64)
    prev = "input"
    for name, _, cout, stride in CONVS:
        wq, sw, bq, _ = q[name]
        s_x, z_x = act[prev]
        s_y, z_y = act[name]
        xp = np.pad(h - z_x, ((0, 0), (1, 1), (1, 1), (0, 0)))   # zero point padding -> 0 after centring
        cols = im2col(xp, stride, pad=0)
        acc = np.einsum("nhwk,ok->nhwo", cols, wq.reshape(cout, -1).astype(np.int64)) + bq
        params = prepare_requant(combine_scales([s_x, sw], s_y, recipe.scale_dtype), recipe)
        h = requantize_output(acc, params, z_y, "int8", act_min=z_y).astype(np.int64)
        prev = name
    s_x, z_x = act[prev]
    s_y, z_y = act["mean"]
    count = h.shape[1] * h.shape[2]
    acc = (h - z_x).sum(axis=(1, 2))
    real = np.float64(s_x) / (np.float64(s_y) * count)
    h = requantize_output(acc, prepare_requant(real, recipe), z_y, "int8").astype(np.int64)
    wq, sw, bq, _ = q["fc"]
    s_x, z_x = s_y, z_y
    s_y, z_y = act["logits"]
    acc = (h - z_x) @ wq.astype(np.int64) + bq
    params = prepare_requant(combine_scales([s_x, sw], s_y, recipe.scale_dtype), recipe)
    return requantize_output(acc, params, z_y, "int8")


# ---------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------

def npz_bytes(arrays: dict) -> bytes:
    """A compressed .npz with fixed zip timestamps, so equal arrays give
    equal bytes (np.savez_compressed stamps the current time)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key, arr in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            arr_buf = io.BytesIO()
            np.lib.format.write_array(arr_buf, np.ascontiguousarray(arr), allow_pickle=False)
            zf.writestr(info, arr_buf.getvalue(), compresslevel=9)
    return buf.getvalue()


def write_atomic(path: str, data: bytes) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------

def make(log=print):
    """Run the whole pipeline; returns (qnn_bytes, npz_bytes, report dict)."""
    import qnnref
    from qnnref import format as qformat
    t0 = time.perf_counter()
    rng = np.random.default_rng(SEED)
    x_tr, y_tr, x_te, y_te = load_data()
    log(f"data: {len(y_tr)} training images, {len(y_te)} held-out test images "
        f"(stratified, seed {SEED})")

    log(f"training ({EPOCHS} epochs, Adam, lr {LR}, batch {BATCH}) ...")
    p = train(x_tr, y_tr, rng, log=log)
    t_train = time.perf_counter() - t0
    n_params = sum(v.size for v in p.values())
    float_pred = float_predict(p, x_te)
    float_correct = int((float_pred == y_te).sum())
    float_acc = float_correct / len(y_te)
    log(f"float model: {n_params} parameters, test accuracy {float_acc:.4f} "
        f"({float_correct}/{len(y_te)}), trained in {t_train:.1f} s")

    ranges = calibrate(p, x_tr)
    q = quantize_model(p, ranges)
    for k, (s, z) in q["act"].items():
        lo, hi = ranges[k]
        log(f"  {k:8s} range [{lo:8.4f}, {hi:8.4f}] -> scale {float(s):.6g}, zero point {z}")

    metadata = {
        "description": "int8 CNN for the UCI handwritten digits (8x8 grey images, 10 classes): "
                       "3 conv 3x3 (+ReLU), global mean, fully connected. Input: pixel/16 in [0, 1] "
                       "quantized with the input's scale and zero point; output: int8 logits.",
        "producer": f"qnnref {qnnref.__version__} ({SCRIPT})",
        "dataset": "uci-digits (sklearn.datasets.load_digits)",
        "split": f"stratified train_test_split, test_size={N_TEST}, random_state={SEED}; "
                 f"{len(y_tr)} training images (also the calibration set), {len(y_te)} held-out "
                 "test images (qnnref/data/digits_test.npz)",
        "seed": SEED,
        "training": f"numpy, float64, Adam lr {LR} (cosine decay), batch {BATCH}, {EPOCHS} epochs, "
                    "random +-1 pixel shifts",
        "quantization": "post-training: int8 symmetric per-channel weights (max|w|/127), int32 biases "
                        "at s_x*s_w, int8 asymmetric per-tensor activations from min/max over the "
                        "training images, ReLU fused as act_min",
        "test_images": len(y_te),
        "float_accuracy": float_acc,
        "float_correct": float_correct,
        "training_script": SCRIPT,
    }
    graph = build_graph(q, dict(metadata, int8_accuracy=0.0, int8_correct=0))
    model = qnnref.Model(graph)
    t1 = time.perf_counter()
    logits = qnnref_logits(model, x_te)
    t_int8 = time.perf_counter() - t1
    int8_pred = logits.argmax(axis=1)
    int8_correct = int((int8_pred == y_te).sum())
    int8_acc = int8_correct / len(y_te)
    log(f"int8 qnnref model: test accuracy {int8_acc:.4f} ({int8_correct}/{len(y_te)}), "
        f"{len(y_te)} images in {t_int8:.1f} s; float and int8 predictions differ on "
        f"{int((int8_pred != float_pred).sum())} images")

    x_q = np.concatenate([quantize_image(model, img) for img in x_te])
    ref = integer_reference(q, x_q)
    if not np.array_equal(ref, logits):
        bad = np.nonzero((ref != logits).any(axis=1))[0]
        raise SystemExit(f"qnnref operators disagree with the independent integer reference on "
                         f"{len(bad)} images (first: {bad[:5].tolist()})")
    log("independent integer reference: identical logits on every test image")

    if abs(int8_acc - float_acc) > 0.01:
        raise SystemExit(f"int8 accuracy {int8_acc:.4f} is not within 1 point of float {float_acc:.4f}")

    graph = build_graph(q, dict(metadata, int8_accuracy=int8_acc, int8_correct=int8_correct))
    qnnref.Model(graph)                                  # validate (as qnnref.save does)
    qnn = qformat.to_bytes(graph)                        # no "created" time: reproducible bytes
    npz = npz_bytes({
        "images": x_te.astype(np.float32),               # [N, 8, 8, 1], pixel / 16
        "labels": y_te.astype(np.int64),                 # [N]
        "golden_logits": logits[:N_GOLDEN].astype(np.int8),   # int8 logits of images[:5]
        "logits": logits.astype(np.int8),                 # int8 logits of every image [N, 10]
    })
    report = dict(float_accuracy=float_acc, int8_accuracy=int8_acc, params=n_params,
                  train_seconds=t_train, total_seconds=time.perf_counter() - t0)
    return qnn, npz, report


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "qnnref", "data"),
                    help="where to write digits.qnn and digits_test.npz (default: qnnref/data)")
    ap.add_argument("--check", action="store_true",
                    help="do not write; fail unless the files in --out-dir are byte-identical")
    args = ap.parse_args(argv)
    qnn, npz, report = make()
    files = {"digits.qnn": qnn, "digits_test.npz": npz}
    for name, data in files.items():
        path = os.path.join(args.out_dir, name)
        digest = hashlib.sha256(data).hexdigest()[:16]
        if args.check:
            with open(path, "rb") as f:
                same = f.read() == data
            print(f"{path}: {len(data)} bytes, sha256 {digest}... {'identical' if same else 'DIFFERS'}")
            if not same:
                return 1
        else:
            write_atomic(path, data)
            print(f"wrote {path}: {len(data)} bytes, sha256 {digest}...")
    total = sum(len(d) for d in files.values())
    print(f"total {total} bytes; float accuracy {report['float_accuracy']:.4f}, int8 accuracy "
          f"{report['int8_accuracy']:.4f}; {report['total_seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
