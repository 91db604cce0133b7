"""Keras HDF5 import: the published model against Keras' own output, and refusals.

The refusal and generality tests use synthetic Keras-layout HDF5 files written here with
h5py (random weights, seeded), never a modified copy presented as the real model.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tests import reference_keras
from tfcnn.apps.cli import app
from tfcnn.errors import TfcnnInputError
from tfcnn.model.estimator import PairCNN
from tfcnn.model.keras_import import convert_keras, import_keras
from tfcnn.model.registry import list_models, resolve_model

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "src" / "tfcnn" / "data" / "published_model" / "convnet_model.hdf5"
REFERENCE = Path(__file__).parent / "fixtures" / "keras_reference.npz"


def test_published_model_reproduces_keras_probabilities() -> None:
    ref = np.load(REFERENCE)
    est = convert_keras(PUBLISHED)
    p = est.predict_proba(ref["x"])[:, 1]
    assert ref["x"].shape == (64, 2, 232)
    np.testing.assert_allclose(p, ref["p"], rtol=0, atol=1e-5)


def test_bundled_published_2019_matches_keras_and_carries_caveat() -> None:
    est = PairCNN.load(resolve_model("published-2019"))
    ref = np.load(REFERENCE)
    np.testing.assert_allclose(est.predict_proba(ref["x"])[:, 1], ref["p"], rtol=0, atol=1e-5)
    prov = est.record_.provenance
    assert prov["reported_accuracy"] == 0.95
    assert prov["tuning_top_validation_accuracy"] == 0.9568
    assert "232" in prov["training_data"] and "AtRegNet" in prov["training_data"]
    caveat = est.record_.caveat
    assert caveat and "not recorded" in caveat and "not a verified match" in caveat
    assert est.record_.samples == []  # the 232 columns are not recorded: none claimed
    assert "published-2019" in [e.name for e in list_models()]


def test_models_command_lists_published_2019() -> None:
    result = CliRunner().invoke(app, ["models"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "published-2019" in result.output
    assert "MacLean 2019" in result.output


# -- synthetic Keras files -------------------------------------------------------------


def _layer(cls: str, name: str, **cfg) -> dict:
    return {"class_name": cls, "config": {"name": name, **cfg}}


def _sep(name: str, filters: int, kw: int, **extra) -> dict:
    cfg = dict(
        filters=filters,
        kernel_size=[2, kw],
        padding="same",
        strides=[1, 1],
        dilation_rate=[1, 1],
        depth_multiplier=1,
        activation="relu",
        use_bias=True,
        data_format="channels_last",
    )
    cfg.update(extra)
    return _layer("SeparableConv2D", name, **cfg)


def _bn(name: str) -> dict:
    return _layer(
        "BatchNormalization", name, axis=-1, epsilon=0.001, momentum=0.99, center=True, scale=True
    )


def synthetic_keras(
    path: Path,
    width: int = 12,
    filters: tuple[int, int] = (3, 5),
    units: int = 4,
    kw: int = 3,
    bn: tuple[bool, bool] = (True, True),
    dropout: float | None = None,
    seed: int = 0,
    edit=None,
) -> dict:
    """Write a synthetic Keras 2 HDF5 pair CNN; return its weights in reference layout."""
    rng = np.random.default_rng(seed)
    f1, f2 = filters
    layers = [_sep("sep1", f1, kw, batch_input_shape=[None, 2, width, 1])]
    if bn[0]:
        layers.append(_bn("bn1"))
    layers.append(_layer("MaxPooling2D", "pool", pool_size=[2, 2], strides=[2, 2], padding="valid"))
    layers.append(_sep("sep2", f2, kw))
    if bn[1]:
        layers.append(_bn("bn2"))
    layers.append(_layer("Flatten", "flat", data_format="channels_last"))
    layers.append(_layer("Dense", "d1", units=units, activation="relu", use_bias=True))
    if dropout is not None:
        layers.append(_layer("Dropout", "drop", rate=dropout, noise_shape=None, seed=None))
    layers.append(_layer("Dense", "d2", units=1, activation="sigmoid", use_bias=True))

    def r(*shape):
        return rng.normal(0, 0.5, shape).astype(np.float32)

    w = {
        "sep1": {"depthwise_kernel": r(2, kw, 1, 1), "pointwise_kernel": r(1, 1, 1, f1)},
        "sep2": {"depthwise_kernel": r(2, kw, f1, 1), "pointwise_kernel": r(1, 1, f1, f2)},
        "d1": {"kernel": r((width // 2) * f2, units), "bias": r(units)},
        "d2": {"kernel": r(units, 1), "bias": r(1)},
    }
    w["sep1"]["bias"], w["sep2"]["bias"] = r(f1), r(f2)
    for name, c in (("bn1", f1), ("bn2", f2)):
        w[name] = {
            "gamma": r(c),
            "beta": r(c),
            "moving_mean": r(c),
            "moving_variance": rng.uniform(0.5, 2.0, c).astype(np.float32),
        }
    if edit is not None:
        edit(layers, w)
    names = [lay["config"]["name"] for lay in layers]
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"2.2.4"
        f.attrs["backend"] = b"tensorflow"
        f.attrs["model_config"] = json.dumps(
            {"class_name": "Sequential", "config": layers}
        ).encode()
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = np.array([n.encode() for n in names])
        for n in names:
            lg = g.create_group(n)
            tensors = w.get(n, {})
            lg.attrs["weight_names"] = np.array([f"{n}/{k}:0".encode() for k in tensors])
            for k, v in tensors.items():
                lg.create_dataset(f"{n}/{k}:0", data=v)
    ref = {
        "dw1": w["sep1"]["depthwise_kernel"],
        "pw1": w["sep1"]["pointwise_kernel"],
        "b1": w["sep1"]["bias"],
        "dw2": w["sep2"]["depthwise_kernel"],
        "pw2": w["sep2"]["pointwise_kernel"],
        "b2": w["sep2"]["bias"],
        "dense_w": w["d1"]["kernel"],
        "dense_b": w["d1"]["bias"],
        "out_w": w["d2"]["kernel"],
        "out_b": w["d2"]["bias"],
    }
    for i, on in enumerate(bn, start=1):
        if on:
            b = w[f"bn{i}"]
            ref[f"bn{i}"] = (b["gamma"], b["beta"], b["moving_mean"], b["moving_variance"])
    return ref


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(width=11, bn=(False, True), dropout=0.2, filters=(2, 6), kw=5),
        dict(width=10, bn=(False, False), units=3),
    ],
)
def test_synthetic_models_match_independent_numpy_reference(tmp_path: Path, kwargs) -> None:
    path = tmp_path / "synthetic.hdf5"
    ref_w = synthetic_keras(path, **kwargs)
    est = convert_keras(path)
    width = kwargs.get("width", 12)
    x = np.random.default_rng(1).normal(size=(6, 2, width)).astype(np.float32)
    expected = np.array([reference_keras.forward(pair, ref_w) for pair in x])
    np.testing.assert_allclose(est.predict_proba(x)[:, 1], expected, rtol=0, atol=1e-5)


def test_keras_223_config_layout_with_input_layer(tmp_path: Path) -> None:
    """tf.keras / Keras >= 2.2.3 write {"name", "layers"} and may start with an InputLayer."""
    path = tmp_path / "synthetic_new_layout.hdf5"
    ref_w = synthetic_keras(path, width=14, dropout=0.05)
    with h5py.File(path, "r+") as f:
        layers = json.loads(f.attrs["model_config"])["config"]
        shape = layers[0]["config"].pop("batch_input_shape")
        layers.insert(0, _layer("InputLayer", "input_1", batch_input_shape=shape))
        cfg = {"class_name": "Sequential", "config": {"name": "seq", "layers": layers}}
        f.attrs["model_config"] = json.dumps(cfg)
    est = convert_keras(path)
    x = np.random.default_rng(2).normal(size=(4, 2, 14)).astype(np.float32)
    expected = np.array([reference_keras.forward(pair, ref_w) for pair in x])
    np.testing.assert_allclose(est.predict_proba(x)[:, 1], expected, rtol=0, atol=1e-5)


def _refusal(tmp_path: Path, edit) -> str:
    path = tmp_path / "bad.hdf5"
    synthetic_keras(path, edit=edit)
    with pytest.raises(TfcnnInputError) as info:
        convert_keras(path)
    return str(info.value)


def test_refuses_unsupported_layer_type(tmp_path: Path) -> None:
    def edit(layers, w):
        layers.insert(-1, _layer("GaussianNoise", "noisy", stddev=0.1))

    msg = _refusal(tmp_path, edit)
    assert "'noisy'" in msg and "GaussianNoise" in msg and "not supported" in msg


def test_refuses_wrong_activation(tmp_path: Path) -> None:
    def edit(layers, w):
        layers[-2]["config"]["activation"] = "tanh"

    msg = _refusal(tmp_path, edit)
    assert "'d1'" in msg and "activation='tanh'" in msg


def test_refuses_wrong_weight_shape(tmp_path: Path) -> None:
    def edit(layers, w):
        w["d1"]["kernel"] = w["d1"]["kernel"][:-1]

    msg = _refusal(tmp_path, edit)
    assert "'d1'" in msg and "kernel" in msg and "shape" in msg


@pytest.mark.parametrize(
    ("index", "key", "value", "needle"),
    [
        (0, "padding", "valid", "padding='valid'"),
        (0, "depth_multiplier", 2, "depth_multiplier=2"),
        (0, "strides", [1, 2], "strides=(1, 2)"),
        (1, "epsilon", 1e-5, "epsilon=1e-05"),
        (2, "pool_size", [2, 3], "pool_size=(2, 3)"),
    ],
)
def test_refuses_other_layer_settings(tmp_path: Path, index, key, value, needle) -> None:
    def edit(layers, w):
        layers[index]["config"][key] = value

    msg = _refusal(tmp_path, edit)
    assert needle in msg and repr(_layer_name(index)) in msg


def _layer_name(index: int) -> str:
    return ["sep1", "bn1", "pool"][index]


def test_refuses_layers_out_of_order_and_non_keras_files(tmp_path: Path) -> None:
    def edit(layers, w):
        layers[2], layers[3] = layers[3], layers[2]  # pool after conv 2

    assert "'sep2'" in _refusal(tmp_path, edit)
    plain = tmp_path / "plain.hdf5"
    with h5py.File(plain, "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    with pytest.raises(TfcnnInputError, match="model_config"):
        convert_keras(plain)
    text = tmp_path / "notes.txt"
    text.write_text("not hdf5")
    with pytest.raises(TfcnnInputError, match="not a readable HDF5"):
        convert_keras(text)


def test_import_writes_model_dir_and_cli_refuses_cleanly(tmp_path: Path) -> None:
    src = tmp_path / "m.hdf5"
    synthetic_keras(src, dropout=0.1)
    out = tmp_path / "model"
    import_keras(src, out, provenance={"description": "synthetic test model", "caveat": "c"})
    loaded = PairCNN.load(out)
    assert loaded.record_.provenance["description"] == "synthetic test model"
    assert loaded.record_.caveat == "c"
    with pytest.raises(TfcnnInputError, match="already exists"):
        import_keras(src, out)
    runner = CliRunner()
    home = {"TFCNN_HOME": str(tmp_path / "home")}
    res = runner.invoke(app, ["import-keras", "--keras", str(src), "--output", str(out)])
    assert res.exit_code == 2 and "already exists" in res.output
    bad = tmp_path / "bad.hdf5"
    shutil.copy(src, bad)
    with h5py.File(bad, "r+") as f:
        cfg = json.loads(f.attrs["model_config"])
        cfg["config"][-1]["config"]["activation"] = "linear"
        f.attrs["model_config"] = json.dumps(cfg)
    res = runner.invoke(app, ["import-keras", "--keras", str(bad), "--output", str(tmp_path / "x")])
    assert res.exit_code == 2, res.output
    assert "'d2'" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "x").exists()
    args = ["import-keras", "--keras", str(src), "--output", str(tmp_path / "y")]
    res = runner.invoke(app, [*args, "--name", "synthetic-import"], env=home)
    assert res.exit_code == 0, res.output
    assert PairCNN.load(tmp_path / "y").n_samples == 12
    assert (tmp_path / "home" / "models" / "synthetic-import" / "model.json").is_file()


def test_predict_with_published_2019_on_a_232_column_matrix(tmp_path: Path) -> None:
    """`tfcnn predict --model published-2019` runs on any 232-column matrix (synthetic here)."""
    rng = np.random.default_rng(3)
    genes = ["AT1G01010", "AT1G01020", "AT1G01030", "AT1G01040"]
    values = rng.normal(8, 1, size=(len(genes), 232))
    lines = ["gene\t" + "\t".join(f"synthetic_{i}" for i in range(232))]
    for g, row in zip(genes, values, strict=True):
        lines.append(g + "\t" + "\t".join(f"{v:.6f}" for v in row))
    matrix = tmp_path / "synthetic_232.tsv"
    matrix.write_text("\n".join(lines) + "\n")
    out = tmp_path / "scores.csv"
    args = ["predict", "--model", "published-2019", "-x", str(matrix), "-r", genes[0]]
    args += ["-t", ",".join(genes[1:]), "-o", str(out)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out).set_index("target")
    z = (values - values.mean(axis=1, keepdims=True)) / values.std(axis=1, ddof=1, keepdims=True)
    est = convert_keras(PUBLISHED)
    for i, target in enumerate(genes[1:], start=1):
        pair = np.stack([z[0], z[i]])[None].astype(np.float32)
        p = est.predict_proba(pair)[0, 1]
        assert abs(table.loc[target, "probability"] - p) < 1e-5


# -- files that point elsewhere or claim too much (security) ------------------------------
def _edit_file(path: Path, fn) -> None:
    with h5py.File(path, "r+") as f:
        fn(f)


def _replace_with(f: h5py.File, where: str, make) -> None:
    """Replace dataset ``where`` by what ``make(group, name)`` creates."""
    group_name, _, name = where.rpartition("/")
    group = f[group_name]
    del group[name]
    make(group, name)


def test_refuses_external_links_external_storage_and_virtual_datasets(tmp_path: Path) -> None:
    """Weights must come from the imported (and hashed) file itself, never from another."""
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.create_dataset("w", data=np.ones((12 // 2 * 5, 4), np.float32))
    raw = tmp_path / "raw.bin"
    raw.write_bytes(np.ones(4, np.float32).tobytes())
    kernel = "model_weights/d1/d1/kernel:0"
    cases = {
        "external link": lambda f: _replace_with(
            f, kernel, lambda g, n: g.__setitem__(n, h5py.ExternalLink(str(other), "w"))
        ),
        "soft link": lambda f: _replace_with(
            f, kernel, lambda g, n: g.__setitem__(n, h5py.SoftLink("/model_weights/d2/d2/kernel:0"))
        ),
        "external storage": lambda f: _replace_with(
            f,
            "model_weights/d1/d1/bias:0",
            lambda g, n: g.create_dataset(n, (4,), np.float32, external=[(str(raw), 0, 16)]),
        ),
        "group link": lambda f: (
            f["model_weights"].__setitem__("d1_alias", h5py.ExternalLink(str(other), "/"))
            or _rename_layer_group(f)
        ),
    }
    for kind, fn in cases.items():
        path = tmp_path / f"{kind.replace(' ', '_')}.hdf5"
        synthetic_keras(path)
        _edit_file(path, fn)
        with pytest.raises(TfcnnInputError) as err:
            convert_keras(path)
        msg = str(err.value)
        assert "stored in the file itself" in msg or "stored in other files" in msg, (kind, msg)
    # A virtual dataset maps other files' bytes too.
    path = tmp_path / "virtual.hdf5"
    synthetic_keras(path)
    layout = h5py.VirtualLayout(shape=(4,), dtype=np.float32)
    layout[:] = h5py.VirtualSource(str(other), "w", shape=(30, 4))[0, :]
    _edit_file(
        path,
        lambda f: _replace_with(
            f, "model_weights/d1/d1/bias:0", lambda g, n: g.create_virtual_dataset(n, layout)
        ),
    )
    with pytest.raises(TfcnnInputError, match="stored in other files"):
        convert_keras(path)


def _rename_layer_group(f: h5py.File) -> None:
    """Make layer d1's weights reachable only through an external link."""
    del f["model_weights/d1"]
    f["model_weights"]["d1"] = h5py.ExternalLink("elsewhere.h5", "/d1")
    del f["model_weights/d1_alias"]


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (
            lambda layers, w: layers[0]["config"].update(kernel_size=[2, 5.5]),
            "kernel_size [2, 5.5]",
        ),
        (lambda layers, w: layers[0]["config"].update(filters=True), "filters True"),
        (lambda layers, w: layers[0]["config"].update(filters=4.0), "filters 4.0"),
        (lambda layers, w: layers[-2]["config"].update(units="8"), "units '8'"),
        (lambda layers, w: layers[0]["config"].update(filters=10**6), "whole number from 1 to"),
    ],
)
def test_refuses_non_integer_and_oversized_counts(tmp_path: Path, edit, needle) -> None:
    assert needle in _refusal(tmp_path, edit)


def test_refuses_text_weights_huge_declared_shapes_and_deep_json(tmp_path: Path) -> None:
    path = tmp_path / "strings.hdf5"
    synthetic_keras(path)
    _edit_file(
        path,
        lambda f: _replace_with(
            f,
            "model_weights/d1/d1/bias:0",
            lambda g, n: g.create_dataset(n, data=np.array([b"a", b"b", b"c", b"d"])),
        ),
    )
    with pytest.raises(TfcnnInputError, match="not numbers"):
        convert_keras(path)
    # A small file declaring an enormous (chunked, empty) dataset: refused before reading.
    path = tmp_path / "huge.hdf5"
    synthetic_keras(path)
    _edit_file(
        path,
        lambda f: _replace_with(
            f,
            "model_weights/d1/d1/kernel:0",
            lambda g, n: g.create_dataset(n, (2**31, 30), np.float32, chunks=(1024, 30)),
        ),
    )
    assert path.stat().st_size < 200_000
    with pytest.raises(TfcnnInputError, match="declares 64,424,509,440 values"):
        convert_keras(path)
    path = tmp_path / "deep.hdf5"
    synthetic_keras(path)
    _edit_file(path, lambda f: f.attrs.__setitem__("model_config", "[" * 100_000 + "]" * 100_000))
    with pytest.raises(TfcnnInputError, match="not valid JSON"):
        convert_keras(path)
    path = tmp_path / "layers.hdf5"
    synthetic_keras(path)
    odd = json.dumps({"class_name": "Sequential", "config": [{"class_name": "Dense", "config": 3}]})
    _edit_file(path, lambda f: f.attrs.__setitem__("model_config", odd))
    with pytest.raises(TfcnnInputError, match="has no list of layers"):
        convert_keras(path)
    fifo = tmp_path / "pipe.h5"
    import os

    os.mkfifo(fifo)
    with pytest.raises(TfcnnInputError, match="not a regular file"):
        convert_keras(fifo)
