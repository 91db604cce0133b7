"""Keras 2 (tf-keras) reference timings for tfcnn's benchmarks; never imports tfcnn.

Runs in its own virtual environment (.bench/keras-venv, made by benchmarks/keras_ref.py)
from an empty temporary working directory, with TensorFlow limited to ``--threads``
threads. Each figure is the median of ``--repeats`` timed runs, after a warm-up:

* ``predict``: the published model (``--model``, the study's convnet_model.hdf5) predicts
  SYNTHETIC pairs at width 232 with ``model.predict(batch_size=20000)``; with ``--widths``,
  the published architecture with random weights at other widths too (the batch scaled
  to the same bytes: 20,000 x 232 / width pairs);
* ``train``: ``model.fit`` of the published configuration, and of the 64/64/64 variant,
  on the pairs of ``--pairs`` (an .npz with X (N, 2, W) and y, written by run.py: the
  same SYNTHETIC pairs tfcnn trains on), RMSprop (lr 1e-3, rho 0.9, eps 1e-7), binary
  cross-entropy with accuracy and AUROC per epoch (what tfcnn's fit records), batch 512.

Writes one JSON object to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["TF_USE_LEGACY_KERAS"] = "1"

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

PUBLISHED_WIDTH = 232
PREDICT_BATCH = 20_000


def build(width: int, filters=(4, 8), units=8, batch_norm=(False, True), dropout=0.01):
    """The study's layer stack (SeparableConv2D 2x5 'same', MaxPool 2x2, ...)."""
    layers = keras.layers
    stack = [
        layers.InputLayer(input_shape=(2, width, 1)),
        layers.SeparableConv2D(filters[0], (2, 5), padding="same", activation="relu"),
    ]
    if batch_norm[0]:
        stack.append(layers.BatchNormalization())
    stack += [
        layers.MaxPooling2D((2, 2)),
        layers.SeparableConv2D(filters[1], (2, 5), padding="same", activation="relu"),
    ]
    if batch_norm[1]:
        stack.append(layers.BatchNormalization())
    stack += [
        layers.Flatten(),
        layers.Dense(units, activation="relu"),
        layers.Dropout(dropout),
        layers.Dense(1, activation="sigmoid"),
    ]
    return keras.Sequential(stack)


def _timed(fn, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def predict(model_path: str, widths: list[int], pairs: int, repeats: int) -> dict:
    out = {}
    rng = np.random.default_rng(0)
    for width in widths:
        if width == PUBLISHED_WIDTH:
            model = keras.models.load_model(model_path, compile=False)
            source = "published model (convnet_model.hdf5)"
        else:
            keras.utils.set_random_seed(0)
            model = build(width)
            source = "published architecture, random weights"
        batch = max(1, PREDICT_BATCH * PUBLISHED_WIDTH // width)
        n = max(batch, pairs * PUBLISHED_WIDTH // width)
        x = rng.standard_normal((n, 2, width, 1), dtype=np.float32)
        model.predict(x[:batch], batch_size=batch, verbose=0)  # warm-up: traces the graph
        times = _timed(lambda m=model, x=x, b=batch: m.predict(x, batch_size=b, verbose=0), repeats)
        out[str(width)] = {
            "model": source,
            "pairs": n,
            "batch": batch,
            "seconds": times,
            "pairs_per_s": n / statistics.median(times),
        }
        del x
    return out


def train(pairs_file: str, epochs: int, repeats: int, variant: dict) -> dict:
    data = np.load(pairs_file)
    x, y = data["X"][..., None].astype(np.float32), data["y"].astype(np.float32)
    width = x.shape[2]

    def fit(n_epochs: int, seed: int, xs=x, ys=y):
        keras.utils.set_random_seed(seed)
        model = build(width, **variant)
        model.compile(
            optimizer=keras.optimizers.RMSprop(learning_rate=1e-3, rho=0.9, epsilon=1e-7),
            loss="binary_crossentropy",
            metrics=["accuracy", keras.metrics.AUC(name="auroc")],
        )
        history = model.fit(xs, ys, batch_size=512, epochs=n_epochs, shuffle=True, verbose=0)
        return history.history["loss"][-1]

    fit(1, 99, x[:1024], y[:1024])  # warm-up: TensorFlow's one-off start-up is not timed
    losses = []
    times = _timed(lambda: losses.append(fit(epochs, len(losses))), repeats)
    return {
        "pairs": int(x.shape[0]),
        "width": int(width),
        "epochs": epochs,
        "seconds": times,
        "median_s": statistics.median(times),
        "final_losses": losses,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--model", required=True, help="the published convnet_model.hdf5")
    parser.add_argument("--pairs", help="training pairs (.npz with X, y)")
    parser.add_argument("--tasks", default="predict,train,train64")
    parser.add_argument("--widths", default="232")
    parser.add_argument("--predict-pairs", type=int, default=200_000)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    tasks = set(args.tasks.split(","))
    result: dict = {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "threads": args.threads,
        "repeats": args.repeats,
        "cwd": os.getcwd(),
    }
    if "predict" in tasks:
        widths = [int(w) for w in args.widths.split(",")]
        result["predict"] = predict(args.model, widths, args.predict_pairs, args.repeats)
    if "train" in tasks:
        result["train_published"] = train(args.pairs, args.epochs, args.repeats, {})
    if "train64" in tasks:
        variant = {"filters": (64, 64), "units": 64}
        result["train_64_64_64"] = train(args.pairs, args.epochs, args.repeats, variant)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
