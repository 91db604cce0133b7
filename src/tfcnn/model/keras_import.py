"""Import a Keras 2 HDF5 pair CNN (such as the published MacLean 2019 model) into `PairCNN`.

The file is read with h5py only: the ``model_config`` JSON attribute describes the layers,
``model_weights/<layer>/<weight name>`` holds the tensors (Keras 2.x ``model.save`` layout;
a ``save_weights`` file cannot be imported, it has no architecture). Nothing is unpickled
and no Keras/TensorFlow is needed.

Accepted: a Sequential model with exactly the shape of
:class:`~tfcnn.model.network.PairCNNNetwork`::

    SeparableConv2D(relu, same) [BatchNormalization] MaxPooling2D(2x2)
    SeparableConv2D(relu, same) [BatchNormalization] Flatten
    Dense(relu) [Dropout] Dense(1, sigmoid)

with input ``(2, W, 1)``, depth multiplier 1, stride/dilation 1, biases on, BatchNorm with
Keras' defaults (eps 1e-3, momentum 0.99, center and scale). Anything else is refused with
a :class:`~tfcnn.errors.TfcnnInputError` naming the layer, because a silently different
computation would give plausible but wrong probabilities.

Weight mapping (Keras -> tfcnn): depthwise kernel ``(kh, kw, C, 1)`` -> ``(C, kh, kw)``;
pointwise ``(1, 1, C, O)`` -> ``(O, C)``; Dense kernel ``(in, out)`` -> ``(out, in)``;
BatchNorm gamma/beta/moving_mean/moving_variance -> weight/bias/running_mean/running_var.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

import numpy as np
import torch

from ..errors import TfcnnInputError
from ..extras import require
from .config import KERAS_BN_EPS, KERAS_BN_MOMENTUM, CNNConfig
from .estimator import PairCNN
from .network import PairCNNNetwork
from .record import TrainingRecord

if TYPE_CHECKING:
    import h5py

SUPPORTED_LAYERS = (
    "InputLayer",
    "SeparableConv2D",
    "MaxPooling2D",
    "BatchNormalization",
    "Flatten",
    "Dense",
    "Dropout",
)

#: What the study's own files say about the published model; written into model.json.
PUBLISHED_2019_CAVEAT = (
    "The published model expects 232 AtGenExpress abiotic-stress ATH1 arrays, RMA "
    "normalised, as columns in the study's order. The study's matrix followed the order of "
    "its sample sheet (atgenexpress-samples: e.g. its columns 134 onwards are GSM131321, "
    "GSM131327, GSM131330, GSM131317, ..., in the sheet's order), but which 232 of the "
    "sheet's arrays it kept is not recorded. A rebuilt matrix is therefore not a verified "
    "match of the training input: treat its probabilities as approximate, and do not "
    "compare them with the study's reported 0.95 accuracy."
)

PUBLISHED_2019_PROVENANCE: dict[str, Any] = {
    "description": (
        "MacLean 2019 published pair CNN (Keras 2 file convnet_model.hdf5, imported weight "
        "for weight); input: 232 AtGenExpress abiotic-stress arrays"
    ),
    "study": (
        "MacLean D. (2019) A convolutional neural network for predicting transcriptional "
        "regulators of genes in Arabidopsis transcriptome data reveals classification based "
        "on positive regulatory interactions. bioRxiv 618926."
    ),
    "training_data": (
        "AtGenExpress abiotic stress ATH1, 232 arrays, AtRegNet confirmed direct positives, "
        "random negatives"
    ),
    "reported_accuracy": 0.95,
    "reported_accuracy_note": (
        "the study's own figure (random negatives, random pair split); not measured by "
        "tfcnn. The study's tuning log (tuning_runs.csv, 96 runs) tops at validation "
        "accuracy 0.9568."
    ),
    "tuning_top_validation_accuracy": 0.9568,
    "source_file": "convnet_model.hdf5 (Keras 2.2.0 HDF5 published with the study)",
    "samples_note": (
        "model.json lists no sample names: the 232 columns the model was trained on are not "
        "recorded. Supply a 232-column matrix in the sample sheet's order and read the caveat."
    ),
    "caveat": PUBLISHED_2019_CAVEAT,
}


def _fail(path: Path, where: str, what: str) -> TfcnnInputError:
    return TfcnnInputError(
        f"{path}: {where}: {what}. tfcnn imports only Sequential pair CNNs of "
        f"{', '.join(SUPPORTED_LAYERS)} in the published layout (see docs/published_model.md)."
    )


def _h5py() -> Any:
    """h5py, imported on first use: it is the optional ``keras`` extra."""
    return require("h5py", "keras", "Importing a Keras model (tfcnn import-keras)")


def _decode(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


#: Largest weight tensor read from a Keras file (values); checked before reading.
MAX_WEIGHT_VALUES = 50_000_000
#: Largest model_config / training_config attribute (characters) and layer count.
MAX_CONFIG_CHARS = 1_000_000
MAX_LAYERS = 64


def _member(path: Path, group: h5py.Group, name: str, where: str) -> h5py.Group | h5py.Dataset:
    """``group[name]`` through hard links only, each step checked before it is followed.

    Soft and external links (and, for datasets, external or virtual storage) would make
    the weights come from another place or another file than the one imported (and
    hashed): they are refused.
    """
    h5 = _h5py()
    node: h5py.Group | h5py.Dataset = group
    for part in [p for p in name.split("/") if p]:
        if not isinstance(node, h5.Group) or part not in node:
            raise _fail(path, where, f"{name!r} is missing")
        link = node.get(part, getlink=True)
        if not isinstance(link, h5.HardLink):
            kind = "an external link" if isinstance(link, h5.ExternalLink) else "a link"
            raise _fail(
                path, where, f"{name!r} is {kind}; tfcnn reads only data stored in the file itself"
            )
        node = node[part]
    return node


def _read_weight(path: Path, group: h5py.Group, name: str, where: str) -> np.ndarray:
    """One weight tensor, after checking its storage, type and size."""
    ds = _member(path, group, name, where)
    if not isinstance(ds, _h5py().Dataset):
        raise _fail(path, where, f"weight {name!r} is not a dataset")
    if ds.external or ds.is_virtual:
        raise _fail(
            path,
            where,
            f"weight {name!r} is stored in other files (external or virtual storage); tfcnn "
            "reads only data stored in the file itself",
        )
    if ds.dtype.kind != "f":
        raise _fail(path, where, f"weight {name!r} holds {ds.dtype} values, not numbers")
    if ds.size > MAX_WEIGHT_VALUES:
        raise _fail(
            path,
            where,
            f"weight {name!r} declares {ds.size:,} values (at most {MAX_WEIGHT_VALUES:,})",
        )
    try:
        return np.asarray(ds[()], dtype=np.float32)
    except (OSError, ValueError) as exc:
        raise _fail(path, where, f"weight {name!r} cannot be read ({exc})") from exc


def _json_attr(path: Path, f: h5py.File, key: str) -> Any:
    raw = f.attrs[key]
    if not isinstance(raw, bytes | str | np.bytes_ | np.str_):
        raise TfcnnInputError(f"{path}: {key} is not text, so not a Keras model description.")
    text = _decode(raw)
    if len(text) > MAX_CONFIG_CHARS:
        raise TfcnnInputError(
            f"{path}: {key} holds {len(text):,} characters; a pair CNN's is a few thousand."
        )
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise TfcnnInputError(f"{path}: {key} is not valid JSON ({exc}).") from exc


def read_keras_hdf5(
    path: str | os.PathLike[str],
) -> tuple[list[dict[str, Any]], dict[str, dict[str, np.ndarray]], dict[str, Any]]:
    """Layers (class_name + config), weights per layer name (short name -> array), file attrs."""
    h5py = _h5py()
    path = Path(path)
    if not path.is_file():
        raise TfcnnInputError(f"{path} is not a regular file; give the Keras .h5/.hdf5 file.")
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError) as exc:
        raise TfcnnInputError(f"{path} is not a readable HDF5 file ({exc}).") from exc
    with f:
        if "model_config" not in f.attrs:
            raise TfcnnInputError(
                f"{path} has no 'model_config' attribute: it is not a Keras model.save() file "
                "(a save_weights() file holds no architecture and cannot be imported)."
            )
        config = _json_attr(path, f, "model_config")
        if not isinstance(config, dict) or config.get("class_name") != "Sequential":
            kind = config.get("class_name") if isinstance(config, dict) else type(config).__name__
            raise _fail(path, "model", f"is a {kind!r}, not a Sequential model")
        layers = config.get("config")
        if isinstance(layers, dict):  # Keras >= 2.2.3: {"name": ..., "layers": [...]}
            layers = layers.get("layers")
        if not isinstance(layers, list) or not all(
            isinstance(x, dict) and isinstance(x.get("config", {}), dict) for x in layers
        ):
            raise _fail(path, "model_config", "has no list of layers")
        if len(layers) > MAX_LAYERS:
            raise _fail(path, "model_config", f"has {len(layers)} layers")
        if "model_weights" not in f:
            raise TfcnnInputError(f"{path} has no 'model_weights' group; no weights to import.")
        group = _member(path, f, "model_weights", "model_weights")
        if not isinstance(group, h5py.Group):
            raise TfcnnInputError(f"{path}: 'model_weights' is not a group; no weights to import.")
        weights: dict[str, dict[str, np.ndarray]] = {}
        for layer in layers:
            name = str((layer.get("config") or {}).get("name", ""))
            if not name or name not in group:
                weights[name] = {}
                continue
            g = _member(path, group, name, f"layer {name!r}")
            if not isinstance(g, h5py.Group):
                raise _fail(path, f"layer {name!r}", "its weights are not a group")
            raw_names = g.attrs.get("weight_names", [])
            names = [_decode(n) for n in np.asarray(raw_names).ravel()]
            tensors = {}
            for wname in names:
                short = wname.split("/")[-1].split(":")[0]
                tensors[short] = _read_weight(path, g, wname, f"layer {name!r}")
            weights[name] = tensors
        attrs: dict[str, Any] = {
            k: _decode(f.attrs[k]) for k in ("keras_version", "backend") if k in f.attrs
        }
        if "training_config" in f.attrs:
            try:
                attrs["training_config"] = _json_attr(path, f, "training_config")
            except TfcnnInputError:
                attrs["training_config"] = None
    return layers, weights, attrs


def _check(path: Path, layer: dict[str, Any], key: str, allowed: tuple[Any, ...]) -> None:
    cfg = layer.get("config") or {}
    value = cfg.get(key, allowed[0])
    if isinstance(value, list):
        value = tuple(value)
    if value not in allowed:
        name = cfg.get("name", "?")
        want = " or ".join(repr(a) for a in allowed)
        raise _fail(
            path, f"layer {name!r} ({layer.get('class_name')})", f"{key}={value!r}, need {want}"
        )


def _weights(
    path: Path, name: str, got: dict[str, np.ndarray], shapes: Mapping[str, tuple[int, ...]]
) -> dict[str, np.ndarray]:
    if set(got) != set(shapes):
        raise _fail(
            path, f"layer {name!r}", f"weights {sorted(got)} found, expected {sorted(shapes)}"
        )
    for k, shape in shapes.items():
        if got[k].shape != shape:
            raise _fail(
                path,
                f"layer {name!r}",
                f"weight {k!r} has shape {got[k].shape}, expected {shape} for this architecture",
            )
        if not np.isfinite(got[k]).all():
            raise _fail(path, f"layer {name!r}", f"weight {k!r} is not finite")
    return got


class _Layers:
    """A cursor over the layer list that names what it expected when it fails."""

    def __init__(self, path: Path, layers: list[dict[str, Any]]) -> None:
        self.path, self.layers, self.i = path, layers, 0

    def peek(self) -> str | None:
        return self.layers[self.i].get("class_name") if self.i < len(self.layers) else None

    def take(self, kind: str) -> dict[str, Any]:
        if self.i >= len(self.layers):
            raise _fail(self.path, "model", f"ends after {self.i} layers; expected {kind} next")
        layer = self.layers[self.i]
        cls = layer.get("class_name")
        name = (layer.get("config") or {}).get("name", "?")
        if cls not in SUPPORTED_LAYERS:
            raise _fail(self.path, f"layer {self.i + 1} {name!r}", f"type {cls!r} is not supported")
        if cls != kind:
            raise _fail(
                self.path,
                f"layer {self.i + 1} {name!r}",
                f"is a {cls}, but the pair CNN layout needs a {kind} here",
            )
        self.i += 1
        return layer


def _is_count(value: object) -> TypeGuard[int]:
    """A positive whole number as JSON gives it (not a bool, not 5.5)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _name(layer: dict[str, Any]) -> str:
    return str((layer.get("config") or {}).get("name", "?"))


def _sep_conv(path: Path, layer: dict[str, Any]) -> tuple[int, int, int]:
    """Validate a SeparableConv2D; return (filters, kernel height, kernel width)."""
    cfg = layer.get("config") or {}
    for key, allowed in (
        ("activation", ("relu",)),
        ("padding", ("same",)),
        ("strides", ((1, 1),)),
        ("dilation_rate", ((1, 1),)),
        ("depth_multiplier", (1,)),
        ("use_bias", (True,)),
        ("data_format", ("channels_last", None)),
    ):
        _check(path, layer, key, allowed)
    kernel = cfg.get("kernel_size")
    if not (
        isinstance(kernel, list)
        and len(kernel) == 2
        and all(_is_count(k) for k in kernel)
        and kernel[0] in (1, 2)
    ):
        raise _fail(path, f"layer {_name(layer)!r}", f"kernel_size {kernel!r}: need [1 or 2, k]")
    filters = cfg.get("filters")
    if not _is_count(filters):
        raise _fail(path, f"layer {_name(layer)!r}", f"filters {filters!r} is not a count")
    return int(filters), int(kernel[0]), int(kernel[1])


def _batch_norm(path: Path, layer: dict[str, Any]) -> None:
    _check(path, layer, "axis", (-1, 3, (-1,), (3,)))
    _check(path, layer, "center", (True,))
    _check(path, layer, "scale", (True,))
    cfg = layer.get("config") or {}
    for key, want in (("epsilon", KERAS_BN_EPS), ("momentum", KERAS_BN_MOMENTUM)):
        value = cfg.get(key, want)
        if not isinstance(value, int | float) or abs(value - want) > 1e-9:
            raise _fail(
                path,
                f"layer {_name(layer)!r} (BatchNormalization)",
                f"{key}={value!r}, need {want}",
            )


def _input_width(path: Path, layer: dict[str, Any]) -> int:
    shape = (layer.get("config") or {}).get("batch_input_shape")
    if not (
        isinstance(shape, list)
        and len(shape) == 4
        and all(_is_count(v) for v in shape[1:])
        and shape[1] == 2
        and shape[3] == 1
    ):
        raise _fail(
            path,
            f"layer {_name(layer)!r}",
            f"input shape {shape!r}: need (batch, 2, n_samples, 1), a TF row and a target row",
        )
    return int(shape[2])


def convert_keras(path: str | os.PathLike[str]) -> PairCNN:
    """Build a fitted `PairCNN` from a Keras 2 HDF5 file, or refuse naming the layer."""
    path = Path(path)
    layers, weights, attrs = read_keras_hdf5(path)
    input_shape = None
    if layers and layers[0].get("class_name") == "InputLayer":  # tf.keras writes one first
        input_shape = (layers[0].get("config") or {}).get("batch_input_shape")
        layers = layers[1:]
    cur = _Layers(path, layers)

    conv1 = cur.take("SeparableConv2D")
    if input_shape is not None and "batch_input_shape" not in (conv1.get("config") or {}):
        conv1 = {**conv1, "config": {**conv1["config"], "batch_input_shape": input_shape}}
    width = _input_width(path, conv1)
    f1, kh, kw = _sep_conv(path, conv1)
    norm1 = cur.take("BatchNormalization") if cur.peek() == "BatchNormalization" else None
    if norm1 is not None:
        _batch_norm(path, norm1)
    pool = cur.take("MaxPooling2D")
    _check(path, pool, "pool_size", ((2, 2),))
    _check(path, pool, "strides", ((2, 2), None))
    _check(path, pool, "padding", ("valid",))
    _check(path, pool, "data_format", ("channels_last", None))
    conv2 = cur.take("SeparableConv2D")
    f2, kh2, kw2 = _sep_conv(path, conv2)
    if (kh2, kw2) != (kh, kw):
        raise _fail(
            path, f"layer {_name(conv2)!r}", f"kernel {kh2}x{kw2} differs from conv 1's {kh}x{kw}"
        )
    norm2 = cur.take("BatchNormalization") if cur.peek() == "BatchNormalization" else None
    if norm2 is not None:
        _batch_norm(path, norm2)
    flat = cur.take("Flatten")
    _check(path, flat, "data_format", ("channels_last", None))
    dense = cur.take("Dense")
    _check(path, dense, "activation", ("relu",))
    _check(path, dense, "use_bias", (True,))
    dropout = 0.0
    drop = cur.take("Dropout") if cur.peek() == "Dropout" else None
    if drop is not None:
        rate = (drop.get("config") or {}).get("rate")
        if not isinstance(rate, int | float) or not 0.0 <= rate < 1.0:
            raise _fail(path, f"layer {_name(drop)!r}", f"rate {rate!r} is not in [0, 1)")
        for key in ("noise_shape", "seed"):
            _check(path, drop, key, (None,))
        dropout = float(rate)
    out = cur.take("Dense")
    _check(path, out, "activation", ("sigmoid",))
    _check(path, out, "units", (1,))
    _check(path, out, "use_bias", (True,))
    if cur.i != len(layers):
        extra = layers[cur.i]
        raise _fail(
            path,
            f"layer {cur.i + 1} {_name(extra)!r}",
            f"{extra.get('class_name')} after the output Dense(1, sigmoid) is not supported",
        )
    units = (dense.get("config") or {}).get("units")
    if not _is_count(units):
        raise _fail(path, f"layer {_name(dense)!r}", f"units {units!r} is not a count")

    try:
        config = CNNConfig(
            n_samples=width,
            filters=(f1, f2),
            units=units,
            batch_norm=(norm1 is not None, norm2 is not None),
            dropout=dropout,
            kernel_width=kw,
            kernel_height=kh,
        )
    except ValueError as exc:
        raise _fail(path, "model", str(exc)) from exc

    state: dict[str, np.ndarray] = {}
    for key, layer, c_in, c_out in (("conv1", conv1, 1, f1), ("conv2", conv2, f1, f2)):
        w = _weights(
            path,
            _name(layer),
            weights.get(_name(layer), {}),
            {
                "depthwise_kernel": (kh, kw, c_in, 1),
                "pointwise_kernel": (1, 1, c_in, c_out),
                "bias": (c_out,),
            },
        )
        state[f"{key}.depthwise"] = w["depthwise_kernel"][:, :, :, 0].transpose(2, 0, 1)
        state[f"{key}.pointwise"] = w["pointwise_kernel"][0, 0].T
        state[f"{key}.bias"] = w["bias"]
    for key, norm, c in (("norm1", norm1, f1), ("norm2", norm2, f2)):
        if norm is None:
            continue
        shapes: dict[str, tuple[int, ...]] = {
            k: (c,) for k in ("gamma", "beta", "moving_mean", "moving_variance")
        }
        w = _weights(path, _name(norm), weights.get(_name(norm), {}), shapes)
        if (w["moving_variance"] < 0).any():
            raise _fail(path, f"layer {_name(norm)!r}", "moving_variance has negative entries")
        state[f"{key}.weight"] = w["gamma"]
        state[f"{key}.bias"] = w["beta"]
        state[f"{key}.running_mean"] = w["moving_mean"]
        state[f"{key}.running_var"] = w["moving_variance"]
    for key, layer, n_in, n_out in (
        ("dense", dense, config.flat_features, units),
        ("out", out, units, 1),
    ):
        shapes = {"kernel": (int(n_in), int(n_out)), "bias": (int(n_out),)}
        w = _weights(path, _name(layer), weights.get(_name(layer), {}), shapes)
        state[f"{key}.weight"] = w["kernel"].T
        state[f"{key}.bias"] = w["bias"]
    for name in (_name(pool), _name(flat)) + ((_name(drop),) if drop else ()):
        if weights.get(name):
            raise _fail(path, f"layer {name!r}", f"holds weights {sorted(weights[name])}")

    net = PairCNNNetwork(config)
    expected = {k for k in net.state_dict() if not k.endswith("num_batches_tracked")}
    assert expected == set(state), (expected, set(state))  # a tfcnn bug if this fails
    net.load_state_dict(
        {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}, strict=False
    )
    net.eval()

    est = PairCNN(
        filters=(f1, f2),
        units=units,
        batch_norm=config.batch_norm,
        dropout=dropout,
        kernel_width=kw,
        **_training_params(attrs.get("training_config")),
    )
    est.network_ = net
    est.classes_ = np.array([0, 1])
    est.n_features_in_ = config.n_samples
    est.history_ = []
    est.record_ = TrainingRecord(
        keras={
            "source_file": path.name,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "keras_version": attrs.get("keras_version"),
            "backend": attrs.get("backend"),
            "layers": [f"{x.get('class_name')}:{_name(x)}" for x in layers],
            "training_note": (
                "optimizer settings read from the file's training_config when it used "
                "RMSprop; batch_size, epochs and seed are not recorded in the file and are "
                "tfcnn's defaults"
            ),
        }
    )
    return est


def _training_params(training_config: Any) -> dict[str, Any]:
    """Optimiser settings from the file when it used RMSprop (the study's), else defaults."""
    params: dict[str, Any] = {}
    try:
        opt = training_config["optimizer_config"]
        if opt["class_name"] == "RMSprop":
            cfg = opt["config"]
            # Keras stored float32 values; round back to what was typed (1e-3, 0.9, 1e-7).
            params["learning_rate"] = float(f"{float(cfg['lr']):.7g}")
            params["rho"] = float(f"{float(cfg['rho']):.7g}")
            params["epsilon"] = float(f"{float(cfg.get('epsilon') or 1e-7):.7g}")
    except (KeyError, TypeError, ValueError):
        return {}
    return params


def import_keras(
    keras_file: str | os.PathLike[str],
    output: str | os.PathLike[str],
    provenance: dict[str, Any] | None = None,
    force: bool = False,
) -> PairCNN:
    """Convert ``keras_file`` and save it as a tfcnn model directory at ``output``."""
    est = convert_keras(keras_file)
    if provenance:
        est.record_.provenance = dict(provenance)
    est.save(output, force=force)
    return est
