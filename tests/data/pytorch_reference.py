#!/usr/bin/env python3
"""PyTorch reference for netcalc's whole-network tests (tests/pytorch.rs).

For the Keras convnet (`keras-cnn`) and netcalc's default `cnn`, in float64: a state dict
(PyTorch's default initialisation, seed 0, rounded to float32 so that netcalc can hold it
exactly), the first 16 held-out digits of the bundled sample, the logits in eval mode (no
dropout), the mean cross-entropy, and every parameter's gradient. Writes, for each model:

    tests/data/pytorch-<model>.safetensors           the state dict (float32), as import reads it
    tests/data/pytorch-<model>-expected.safetensors  images (uint8), labels, logits, loss, grad.<name>
    tests/data/pytorch-keras-cnn.pt                  the same state dict through torch.save

The module names are netcalc's (features.blocks.N.conv, classifier.layers.N), as in the
model.py that `mnist export` writes. Run by hand (PyTorch and safetensors from PyPI):

    venv/bin/python tests/data/pytorch_reference.py
"""

import gzip
import os

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLE = os.path.join(HERE, "..", "..", "data", "mnist-sample")
MEAN, STD = 0.1307, 0.3081


class Block(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3)

    def forward(self, x):
        return nn.functional.max_pool2d(torch.relu(self.conv(x)), 2)


class Features(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([Block(1, 32), Block(32, 64)])

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return torch.flatten(x, 1)


class Classifier(nn.Module):
    def __init__(self, sizes):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))

    def forward(self, x):  # eval mode: dropout is the identity
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i + 1 < len(self.layers):
                x = torch.relu(x)
        return x


class Net(nn.Module):
    def __init__(self, sizes):
        super().__init__()
        self.features = Features()
        self.classifier = Classifier(sizes)

    def forward(self, x):
        return self.classifier(self.features(x))


MODELS = {"keras-cnn": [1600, 10], "cnn": [1600, 128, 10]}


def idx(name):
    with gzip.open(os.path.join(SAMPLE, name), "rb") as f:
        data = f.read()
    ndims = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndims).reshape(dims)


def main():
    images = idx("test-images-idx3-ubyte.gz")[:16].copy()
    labels = idx("test-labels-idx1-ubyte.gz")[:16].astype(np.int64)
    x = (torch.from_numpy(images).double().unsqueeze(1) / 255.0 - MEAN) / STD
    y = torch.from_numpy(labels)
    for name, sizes in MODELS.items():
        torch.manual_seed(0)
        net = Net(sizes).double()
        with torch.no_grad():
            for p in net.parameters():
                p.copy_(p.float().double())
        net.eval()
        logits = net(x)
        loss = nn.functional.cross_entropy(logits, y)
        loss.backward()
        state = {k: v.float().contiguous() for k, v in net.state_dict().items()}
        save_file(state, os.path.join(HERE, f"pytorch-{name}.safetensors"))
        if name == "keras-cnn":
            torch.save(state, os.path.join(HERE, f"pytorch-{name}.pt"))
        expected = {
            "images": torch.from_numpy(images),
            "labels": y,
            "logits": logits.detach().float(),
            "loss": loss.detach().float().reshape(1),
        }
        for k, p in net.named_parameters():
            expected[f"grad.{k}"] = p.grad.float().contiguous()
        save_file(expected, os.path.join(HERE, f"pytorch-{name}-expected.safetensors"))
        print(f"{name}: loss {loss.item():.10f}, logits[0] {logits[0, :3].tolist()}")


if __name__ == "__main__":
    main()
