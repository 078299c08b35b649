#!/usr/bin/env python3
"""By-hand check of netcalc's model export and import against PyTorch (docs/data.md).

1. `mnist export --model RUN --out DIR`, then here: `build()` from DIR/model.py with
   DIR/model.safetensors gives, on the 2,000 held-out digits of the bundled sample, the same
   class as netcalc for every digit, and logits within 1e-4 of the scores netcalc wrote with
   `mnist eval --model RUN --scores SCORES.csv`.
2. The same `build()` trained here for one epoch (Adam 1e-3, batch 64, the 8,000 training
   digits through `preprocess`) is saved with `torch.save(net.state_dict(), OUT.pt)`, and its
   held-out accuracy printed: `mnist import --weights OUT.pt …` then `mnist eval` must print
   the same.

    venv/bin/python tests/data/interop_check.py DIR SCORES.csv OUT.pt
"""

import csv
import gzip
import importlib.util
import os
import sys

import numpy as np
import torch
from safetensors.torch import load_file

SAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "data", "mnist-sample")


def idx(name):
    with gzip.open(os.path.join(SAMPLE, name), "rb") as f:
        data = f.read()
    ndims = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndims).reshape(dims)


def main():
    export_dir, scores_csv, out_pt = sys.argv[1:4]
    spec = importlib.util.spec_from_file_location("model", os.path.join(export_dir, "model.py"))
    model = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(model)
    net = model.build()
    net.load_state_dict(load_file(os.path.join(export_dir, "model.safetensors")))
    net.eval()
    test_x, test_y = idx("test-images-idx3-ubyte.gz"), idx("test-labels-idx1-ubyte.gz")
    with torch.no_grad():
        logits = net(model.preprocess(test_x)).numpy()
    with open(scores_csv) as f:
        rows = list(csv.reader(f))
    ours = np.array([[float(v) for v in r[2:]] for r in rows[1:]], dtype=np.float32)
    same = int((ours.argmax(1) == logits.argmax(1)).sum())
    print(f"1. export: PyTorch and netcalc agree on the class of {same} of {len(ours)} held-out digits; "
          f"max |logit difference| {np.abs(ours - logits).max():.2e}")

    torch.manual_seed(0)
    net = model.build()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    train_x = model.preprocess(idx("train-images-idx3-ubyte.gz"))
    train_y = torch.from_numpy(idx("train-labels-idx1-ubyte.gz").astype(np.int64))
    net.train()
    order = torch.randperm(len(train_y), generator=torch.Generator().manual_seed(0))
    for i in range(0, len(order), 64):
        b = order[i:i + 64]
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(train_x[b]), train_y[b]).backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        pred = net(model.preprocess(test_x)).argmax(1).numpy()
    correct = int((pred == test_y).sum())
    torch.save(net.state_dict(), out_pt)
    print(f"2. trained in PyTorch for 1 epoch: test accuracy {100 * correct / len(test_y):.2f}% "
          f"({correct} of {len(test_y)}); state dict saved to {out_pt}")


if __name__ == "__main__":
    main()
