#!/usr/bin/env python3
"""PyTorch's side of the export -> PyTorch -> import round trip (tests/cli.rs,
`export_pytorch_import_eval_gives_pytorchs_own_accuracy`).

Given the directory that test keeps with `NETCALC_KEEP_ROUNDTRIP=DIR` (a folder of shapes in
DIR/shapes/{train,test}/<class>/*.png and netcalc's export of a model trained on it in
DIR/export), this script does what a user would: `build()` from the exported model.py, one
epoch of Adam on the training images through `preprocess()`, `torch.save` of the state dict,
then PyTorch's own accuracy on the held-out images. It writes

    tests/data/roundtrip-torch.pt     the state dict (torch.save), as `netcalc import` reads it
    tests/data/roundtrip-torch.onnx   the same network, torch.onnx.export with default settings
    tests/data/roundtrip-torch.json   PyTorch's hits per class on DIR/shapes/test

Run by hand (PyTorch, onnx, onnxscript, numpy and Pillow from PyPI):

    NETCALC_KEEP_ROUNDTRIP=/tmp/rt cargo test --release --test cli export_pytorch
    venv/bin/python tests/data/roundtrip_torch.py /tmp/rt
"""

import json
import os
import sys

import numpy as np
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))


def load(split_dir, classes):
    images, labels = [], []
    for k, name in enumerate(classes):
        d = os.path.join(split_dir, name)
        for f in sorted(os.listdir(d)):
            images.append(np.asarray(Image.open(os.path.join(d, f)).convert("L")))
            labels.append(k)
    return np.stack(images), np.array(labels)


def main(root):
    sys.path.insert(0, os.path.join(root, "export"))
    from model import CLASSES, build, preprocess  # the exported model.py

    torch.manual_seed(0)
    net = build()
    x_train, y_train = load(os.path.join(root, "shapes", "train"), CLASSES)
    x_test, y_test = load(os.path.join(root, "shapes", "test"), CLASSES)
    x, y = preprocess(x_train), torch.from_numpy(y_train)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    net.train()
    order = torch.randperm(len(y))
    for i in range(0, len(y), 16):
        idx = order[i : i + 16]
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x[idx]), y[idx])
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        predicted = net(preprocess(x_test)).argmax(1).numpy()
    correct = [int(((predicted == y_test) & (y_test == k)).sum()) for k in range(len(CLASSES))]
    torch.save(net.state_dict(), os.path.join(HERE, "roundtrip-torch.pt"))
    # the same network through ONNX, as torch.onnx.export makes it with its default settings
    torch.onnx.export(net, preprocess(x_test[:1]), os.path.join(HERE, "roundtrip-torch.onnx"))
    with open(os.path.join(HERE, "roundtrip-torch.json"), "w") as f:
        json.dump({"classes": CLASSES, "correct_per_class": correct, "total": int(len(y_test))}, f)
        f.write("\n")
    print(f"PyTorch: {sum(correct)} of {len(y_test)} held-out images ({100 * sum(correct) / len(y_test):.2f} %), per class {correct}")


if __name__ == "__main__":
    main(sys.argv[1])
