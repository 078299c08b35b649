#!/usr/bin/env python3
"""Keras 3 / TensorFlow CPU reference for netcalc's throughput benchmark.

`--model` picks one of netcalc's presets (default `keras-cnn`; also `cnn` and `mlp`). The same
models and protocol as `pytorch_convnet.py` and `mnist bench` (common.py): Keras' "simple MNIST
convnet" (conv 1->32 3x3 ReLU, max-pool 2, conv 32->64 3x3 ReLU, max-pool 2, flatten 1600,
dropout 0.5, dense 10; 34,826 parameters), synthetic N(0, 1) batches, sparse categorical
cross-entropy on logits, Adam lr 1e-3, f32; training with `train_on_batch` (a compiled
`tf.function`) at batch 128, inference at batch 1000 as the faster of `predict_on_batch` and
calling the model with training=False. TensorFlow's default threads unless `--threads`.

Prints one JSON object: {"framework": "keras", "version": ..., "backend": ..., "threads": ...,
"train_images_per_sec": ..., "infer_images_per_sec": ...}.

    python3 -m venv venv && venv/bin/pip install tensorflow-cpu
    venv/bin/python benches/reference/keras_convnet.py --steps 30
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402
from keras import layers  # noqa: E402

from common import PARAMS, median_seconds, parse_args, report  # noqa: E402


def model(name: str) -> keras.Model:
    """netcalc's presets of the same name."""
    features = [
        layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Flatten(),
    ]
    if name == "keras-cnn":
        head = features + [layers.Dropout(0.5), layers.Dense(10)]
    elif name == "cnn":
        head = features + [
            layers.Dropout(0.25), layers.Dense(128, activation="relu"), layers.Dropout(0.5),
            layers.Dense(10),
        ]
    else:
        head = [
            layers.Flatten(), layers.Dense(50, activation="relu"),
            layers.Dense(25, activation="relu"), layers.Dense(10),
        ]
    return keras.Sequential([keras.Input(shape=(28, 28, 1))] + head)


def main() -> None:
    a = parse_args(__doc__)
    if a.threads:
        tf.config.threading.set_intra_op_parallelism_threads(a.threads)
        tf.config.threading.set_inter_op_parallelism_threads(a.threads)
    keras.utils.set_random_seed(0)
    net = model(a.model)
    assert net.count_params() == PARAMS[a.model], net.count_params()
    net.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=False,
    )
    rng = np.random.default_rng(0)
    x = rng.standard_normal((a.batch_size, 28, 28, 1), dtype=np.float32)
    y = (np.arange(a.batch_size) % 10).astype(np.int64)
    train = median_seconds(lambda: float(net.train_on_batch(x, y)), a.steps)
    xi = rng.standard_normal((a.infer_batch_size, 28, 28, 1), dtype=np.float32)
    # Two ways to run inference: `predict_on_batch` (a compiled tf.function) and calling the
    # model (eager, which Keras recommends for small batches); the faster one counts.
    infer = min(
        median_seconds(lambda: int(np.argmax(net.predict_on_batch(xi), axis=1)[0]), a.steps),
        median_seconds(lambda: int(np.argmax(net(xi, training=False).numpy(), axis=1)[0]), a.steps),
    )
    report(
        "keras", a, train, infer,
        version=f"keras {keras.__version__}, tensorflow {tf.__version__}",
        backend=keras.backend.backend(),
        threads=tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count(),
    )


if __name__ == "__main__":
    main()
