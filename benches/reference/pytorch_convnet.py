#!/usr/bin/env python3
"""PyTorch CPU reference for netcalc's throughput benchmark.

`--model` picks one of netcalc's presets (default `keras-cnn`; also `cnn` and `mlp`). The default:
the same architecture as netcalc's `keras-cnn` preset (Keras' "simple MNIST convnet": conv 1->32 3x3
ReLU, max-pool 2, conv 32->64 3x3 ReLU, max-pool 2, flatten 1600, dropout 0.5, dense 10;
34,826 parameters), the protocol of `mnist bench` (common.py): synthetic N(0, 1) batches,
cross-entropy on logits, Adam lr 1e-3, f32; training at batch 128, inference at batch 1000 in
eval mode without autograd.

Prints one JSON object: {"framework": "pytorch", "version": ..., "threads": ...,
"train_images_per_sec": ..., "infer_images_per_sec": ...}.

    python3 benches/reference/pytorch_convnet.py --steps 30
"""

import torch
from torch import nn

from common import PARAMS, median_seconds, parse_args, report


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


def main() -> None:
    a = parse_args(__doc__)
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
    train = median_seconds(step, a.steps)
    net.eval()
    xi = torch.randn(a.infer_batch_size, 1, 28, 28)
    with torch.inference_mode():
        infer = median_seconds(lambda: net(xi).argmax(1)[0].item(), a.steps)
    report("pytorch", a, train, infer, version=torch.__version__, threads=torch.get_num_threads())


if __name__ == "__main__":
    main()
