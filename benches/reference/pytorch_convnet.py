#!/usr/bin/env python3
"""PyTorch CPU reference for netcalc's throughput benchmark.

`--model` picks one of netcalc's presets (default `keras-cnn`; also `cnn` and `mlp`). The default:
the same architecture as netcalc's `keras-cnn` preset (Keras' "simple MNIST convnet": conv 1->32 3x3
ReLU, max-pool 2, conv 32->64 3x3 ReLU, max-pool 2, flatten 1600, dropout 0.5, dense 10;
34,826 parameters), same protocol as `mnist bench`: synthetic N(0, 1) batches, cross-entropy on
logits, Adam lr 1e-3, f32; 3 warm-up steps, then the median of `--steps` timed training steps at
batch 128 and of up to 20 inference batches of 1000 (eval mode, no autograd).

Prints one JSON object: {"framework": "pytorch", "version": ..., "threads": ...,
"train_images_per_sec": ..., "infer_images_per_sec": ...}.

    python3 benches/reference/pytorch_convnet.py --steps 30
"""

import argparse
import json
import statistics
import time

import torch
from torch import nn


def model(name: str) -> nn.Module:
    """netcalc's presets of the same name."""
    features = [
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
    ]
    if name == "keras-cnn":
        return nn.Sequential(*features, nn.Dropout(0.5), nn.Linear(1600, 10))
    if name == "cnn":
        return nn.Sequential(
            *features, nn.Dropout(0.25), nn.Linear(1600, 128), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(128, 10),
        )
    return nn.Sequential(
        nn.Flatten(), nn.Linear(784, 50), nn.ReLU(), nn.Linear(50, 25), nn.ReLU(),
        nn.Linear(25, 10),
    )


PARAMS = {"keras-cnn": 34_826, "cnn": 225_034, "mlp": 40_785}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=sorted(PARAMS), default="keras-cnn")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--infer-batch-size", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = PyTorch's default)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net = model(a.model)
    assert sum(p.numel() for p in net.parameters()) == PARAMS[a.model]
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.randn(a.batch_size, 1, 28, 28)
    y = torch.arange(a.batch_size) % 10

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    net.train()
    for _ in range(3):
        step()
    train = []
    for _ in range(max(1, a.steps)):
        t = time.perf_counter()
        step()
        train.append(time.perf_counter() - t)

    net.eval()
    xi = torch.randn(a.infer_batch_size, 1, 28, 28)
    infer = []
    with torch.inference_mode():
        for _ in range(3):
            net(xi).argmax(1)[0].item()
        for _ in range(min(20, max(1, a.steps))):
            t = time.perf_counter()
            net(xi).argmax(1)[0].item()
            infer.append(time.perf_counter() - t)

    print(json.dumps({
        "framework": "pytorch",
        "model": a.model,
        "infer_batch_size": a.infer_batch_size,
        "version": torch.__version__,
        "threads": torch.get_num_threads(),
        "train_images_per_sec": a.batch_size / statistics.median(train),
        "infer_images_per_sec": a.infer_batch_size / statistics.median(infer),
    }))


if __name__ == "__main__":
    main()
