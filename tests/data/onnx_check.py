#!/usr/bin/env python3
"""ONNX Runtime's side of netcalc's ONNX export (docs/interop.md): what a consumer does with
`model.onnx` and nothing else.

    onnx_check.py MODEL_ONNX FOLDER [SCORES_CSV]

1. `onnx.checker.check_model(full_check=True)`.
2. Reads the data contract from `metadata_props` only (classes, input shape, mean, std,
   preprocessing), reads every image of FOLDER/<class>/*.png|jpg (the classes in the
   model's order), prepares it as netcalc documents (grey from colour by Rec. 709 luma; the
   images must already have the model's height and width), and runs the batch in ONNX
   Runtime.
3. Prints ONNX Runtime's accuracy and hits per class; with SCORES_CSV (written by
   `netcalc eval --model RUN --data DIR --scores SCORES_CSV`, the same images in the same
   order) it also prints the largest difference between ONNX Runtime's logits and netcalc's,
   relative to the largest |logit|, and fails above 1e-5 or when a prediction differs.

Prints one JSON line. Needs onnx, onnxruntime, numpy and Pillow (PyPI).
"""
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from PIL import Image


def main(path, folder, scores=None):
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    meta = {p.key: p.value for p in model.metadata_props}
    classes = json.loads(meta["netcalc.classes"])
    c, h, w = json.loads(meta["netcalc.input_shape"])
    mean = np.array(json.loads(meta["netcalc.mean"]), dtype=np.float32)
    std = np.array(json.loads(meta["netcalc.std"]), dtype=np.float32)
    preprocess = json.loads(meta["netcalc.preprocess"])
    images, labels = [], []
    for k, name in enumerate(classes):
        d = os.path.join(folder, name)
        for f in sorted(os.listdir(d)):
            if not f.lower().endswith((".png", ".jpg", ".jpeg")):
                continue
            img = Image.open(os.path.join(d, f))
            a = np.asarray(img.convert("RGB"), dtype=np.float64)
            if c == 1:
                a = np.floor((2126 * a[..., 0] + 7152 * a[..., 1] + 722 * a[..., 2]) / 10000 + 0.5)
                a = a[None]
            else:
                a = a.transpose(2, 0, 1)
            assert a.shape[1:] == (h, w), f"{f}: {a.shape[1:]} is not the model's {h}x{w}"
            images.append(a.astype(np.uint8))
            labels.append(k)
    x = (np.stack(images).astype(np.float32) / 255.0 - mean[None, :, None, None]) / std[None, :, None, None]
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    logits, probs = session.run(["logits", "probabilities"], {"input": x})
    predicted = logits.argmax(1)
    labels = np.array(labels)
    hits = [int(((predicted == labels) & (labels == k)).sum()) for k in range(len(classes))]
    out = {
        "opset": model.opset_import[0].version,
        "ir_version": model.ir_version,
        "checker_full_check": "passed",
        "preprocess": preprocess,
        "images": len(labels),
        "onnxruntime_accuracy": float((predicted == labels).mean()),
        "onnxruntime_hits_per_class": hits,
        "probabilities_sum_to_1": bool(np.allclose(probs.sum(1), 1, atol=1e-5)),
    }
    if scores:
        rows = [line.strip().split(",") for line in open(scores).readlines()[1:]]
        theirs = np.array([[float(v) for v in r[2:]] for r in rows], dtype=np.float32)
        assert [int(r[0]) for r in rows] == labels.tolist(), "the scores are of other images"
        rel = float(np.abs(logits - theirs).max() / np.abs(theirs).max())
        out["max_logit_difference_relative"] = rel
        out["netcalc_accuracy"] = float((theirs.argmax(1) == labels).mean())
        out["same_predictions"] = bool((theirs.argmax(1) == predicted).all())
        assert rel <= 1e-5 and out["same_predictions"], out
    print(json.dumps(out))


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    main(*sys.argv[1:])
