"""What the reference scripts share: their command line, the timing protocol and the report.

The protocol of `mnist bench`: synthetic batches, 3 untimed steps, then the median of
`--steps` timed training steps and of `--steps` timed inference batches.
"""

import argparse
import json
import statistics
import time

# netcalc's presets and their parameter counts: each script builds the same three models.
PARAMS = {"keras-cnn": 34_826, "cnn": 225_034, "mlp": 40_785}

WARMUP = 3


def parse_args(doc: str) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--model", choices=sorted(PARAMS), default="keras-cnn")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--infer-batch-size", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--threads", type=int, default=0, help="threads (0 = the framework's default)")
    return ap.parse_args()


def median_seconds(run, steps: int) -> float:
    """The median time of `steps` calls of `run` (at least 1), after `WARMUP` untimed ones."""
    for _ in range(WARMUP):
        run()
    times = []
    for _ in range(max(1, steps)):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def report(framework: str, a: argparse.Namespace, train_s: float, infer_s: float, **extra) -> None:
    """Prints the one JSON object compare.sh reads."""
    print(json.dumps({
        "framework": framework,
        "model": a.model,
        "infer_batch_size": a.infer_batch_size,
        **extra,
        "train_images_per_sec": a.batch_size / train_s,
        "infer_images_per_sec": a.infer_batch_size / infer_s,
    }))
