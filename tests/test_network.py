"""Layer semantics of PairCNNNetwork against independent references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests import reference_keras
from tfcnn.model.network import CNNConfig, PairCNNNetwork, same_padding


def _randomise(net: PairCNNNetwork, seed: int) -> None:
    """Random weights everywhere, including non-trivial batch-norm statistics."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        for bn in (net.norm1, net.norm2):
            if bn is not None:
                bn.running_mean.copy_(torch.randn(bn.running_mean.shape, generator=g))
                bn.running_var.copy_(torch.rand(bn.running_var.shape, generator=g) + 0.5)


def _keras_weights(net: PairCNNNetwork) -> dict:
    """The network's weights in Keras layouts (the mapping a Keras import inverts)."""

    def t(x):
        return x.detach().double().numpy()

    w = {
        "dw1": t(net.conv1.depthwise).transpose(1, 2, 0)[..., None],
        "pw1": t(net.conv1.pointwise).T[None, None],
        "b1": t(net.conv1.bias),
        "dw2": t(net.conv2.depthwise).transpose(1, 2, 0)[..., None],
        "pw2": t(net.conv2.pointwise).T[None, None],
        "b2": t(net.conv2.bias),
        "dense_w": t(net.dense.weight).T,
        "dense_b": t(net.dense.bias),
        "out_w": t(net.out.weight).T,
        "out_b": t(net.out.bias),
    }
    for key, bn in (("bn1", net.norm1), ("bn2", net.norm2)):
        if bn is not None:
            w[key] = (t(bn.weight), t(bn.bias), t(bn.running_mean), t(bn.running_var))
    return w


@pytest.mark.parametrize(
    "config",
    [
        CNNConfig(n_samples=232),
        CNNConfig(n_samples=17, filters=(3, 5), units=4, batch_norm=(True, True)),
        CNNConfig(n_samples=20, kernel_width=4, batch_norm=(True, False), dropout=0.2),
        CNNConfig(n_samples=9, kernel_width=3, filters=(2, 2), units=3, batch_norm=(False, False)),
    ],
    ids=["published", "odd-width-bn-both", "even-kernel-bn1", "tiny"],
)
def test_matches_loop_reference(config: CNNConfig) -> None:
    net = PairCNNNetwork(config).eval()
    _randomise(net, seed=config.n_samples)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, config.n_samples)).astype(np.float32)
    with torch.no_grad():
        ours = torch.sigmoid(net(torch.from_numpy(x))).double().numpy()
    w = _keras_weights(net)
    ref = np.array([reference_keras.forward(pair, w) for pair in x])
    np.testing.assert_allclose(ours, ref, atol=1e-5, rtol=0)


def _torch_grouped_reference(net: PairCNNNetwork, x: torch.Tensor) -> torch.Tensor:
    """The same network written with plain grouped nn.functional.conv2d (training mode)."""

    def sep(h, conv):
        kh, kw = conv.kernel
        top, bottom = same_padding(kh)
        left, right = same_padding(kw)
        h = F.pad(h, (left, right, top, bottom))
        c = conv.depthwise.shape[0]
        h = F.conv2d(h, conv.depthwise.unsqueeze(1), groups=c)
        return F.conv2d(h, conv.pointwise[:, :, None, None], conv.bias)

    h = F.relu(sep(x.unsqueeze(1), net.conv1))
    if net.norm1 is not None:
        h = net.norm1(h)
    h = F.max_pool2d(h, 2)
    h = F.relu(sep(h, net.conv2))
    if net.norm2 is not None:
        h = net.norm2(h)
    h = h.permute(0, 2, 3, 1).flatten(1)
    return net.out(F.relu(net.dense(h))).squeeze(1)


@pytest.mark.parametrize("width", [131, 232, 33])
def test_gradients_match_grouped_conv_reference(width: int) -> None:
    """Training-mode outputs and parameter gradients equal the grouped-conv formulation."""
    config = CNNConfig(n_samples=width, dropout=0.0, batch_norm=(True, True))
    net = PairCNNNetwork(config).train()
    _randomise(net, seed=width)
    x = torch.randn(8, 2, width, generator=torch.Generator().manual_seed(1))
    ours = net(x)
    ours.sum().backward()
    grads = {n: p.grad.clone() for n, p in net.named_parameters()}
    net.zero_grad()
    ref = _torch_grouped_reference(net, x)
    ref.sum().backward()
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
    for name, p in net.named_parameters():
        torch.testing.assert_close(grads[name], p.grad, atol=1e-4, rtol=1e-4, msg=name)


@pytest.mark.parametrize(
    "config",
    [
        CNNConfig(n_samples=40, filters=(20, 24), units=6, dropout=0.0),
        CNNConfig(n_samples=33, filters=(4, 16), units=5, dropout=0.0, kernel_width=4),
        CNNConfig(n_samples=30, filters=(3, 5), units=4, dropout=0.0, batch_norm=(False, False)),
        CNNConfig(n_samples=232, dropout=0.0),
        CNNConfig(n_samples=37, filters=(5, 3), units=4, dropout=0.0),
        CNNConfig(n_samples=21, filters=(3, 4), units=3, dropout=0.0, kernel_height=1),
        CNNConfig(n_samples=18, filters=(2, 3), units=3, dropout=0.0, kernel_width=1),
    ],
    ids=[
        "separable-row-bn",
        "wide-bn2-even-kernel",
        "narrow-no-bn",
        "published",
        "odd-width",
        "one-row-kernel",
        "one-column-kernel",
    ],
)
def test_fast_training_paths_match_grouped_conv_reference(config: CNNConfig) -> None:
    """Without batch norm 1: pooled first block, conv 2 (composed, or depthwise +
    pointwise from SEPARABLE_FROM channels) and batch norm 2 over a channels-last view
    give the grouped-conv outputs, gradients (of the parameters and of the input, which
    saliency maps use) and running statistics."""
    net = PairCNNNetwork(config).train()
    _randomise(net, seed=config.n_samples)
    ref = PairCNNNetwork(config).train()
    ref.load_state_dict(net.state_dict())
    x = torch.randn(16, 2, config.n_samples, generator=torch.Generator().manual_seed(2))
    x_ref = x.clone().requires_grad_()
    x.requires_grad_()
    ours = net(x)
    (ours * torch.linspace(-1, 1, len(ours))).sum().backward()
    theirs = _torch_grouped_reference(ref, x_ref)
    (theirs * torch.linspace(-1, 1, len(theirs))).sum().backward()
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(x.grad, x_ref.grad, atol=1e-4, rtol=1e-4)
    x = x.detach()
    grads = dict(ref.named_parameters())
    for name, p in net.named_parameters():
        torch.testing.assert_close(p.grad, grads[name].grad, atol=1e-4, rtol=1e-4, msg=name)
    for name, buf in net.named_buffers():  # batch norm running statistics, batch count
        torch.testing.assert_close(buf, dict(ref.named_buffers())[name], msg=name)
    net.eval()
    ref.eval()
    with torch.no_grad():
        torch.testing.assert_close(net(x), _torch_grouped_reference(ref, x), atol=1e-5, rtol=0)


def test_published_shapes_and_parameter_count() -> None:
    """Per-layer counts of the published architecture (BN after conv 2 only).

    Keras: conv1 18 + conv2 80 + BN2 4*8 (16 trainable) + dense 7,432 + out 9 = 7,571.
    """
    net = PairCNNNetwork()
    trainable = sum(p.numel() for p in net.parameters())
    buffers = sum(b.numel() for n, b in net.named_buffers() if "num_batches" not in n)
    assert trainable == 7_555
    assert buffers == 16  # BN2 moving mean + variance
    assert trainable + buffers == 7_571
    assert net.config.flat_features == 928
    assert net.features(torch.zeros(2, 2, 232)).shape == (2, 8, 1, 116)


def test_batch_norm_uses_keras_settings() -> None:
    net = PairCNNNetwork()
    assert net.norm2.eps == pytest.approx(1e-3)
    assert net.norm2.momentum == pytest.approx(0.01)


def test_rejects_wrong_input_width() -> None:
    net = PairCNNNetwork(CNNConfig(n_samples=10))
    with pytest.raises(ValueError, match=r"\(N, 2, 10\)"):
        net(torch.zeros(1, 2, 11))


@pytest.mark.parametrize(
    "kwargs",
    [{"filters": (0, 8)}, {"units": 0}, {"dropout": 1.0}, {"n_samples": 1}, {"kernel_width": 0}],
)
def test_config_rejects_nonsense(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        CNNConfig(**kwargs)


def test_config_roundtrip() -> None:
    c = CNNConfig(n_samples=131, filters=(16, 32), units=64, batch_norm=(True, False))
    assert CNNConfig.from_dict(c.to_dict()) == c


def test_sizes_are_whole_numbers_within_caps_before_anything_is_allocated() -> None:
    """A model.json or option asking for 1e9 filters is refused by the config itself."""
    from tfcnn.model.config import MAX_PARAMETERS

    for bad in (
        dict(filters=(4, 1_000_000_000)),
        dict(filters=(4.0, 8)),
        dict(units=True),
        dict(units=8.5),
        dict(kernel_width=0),
        dict(n_samples=2_000_000),
        dict(batch_norm=(1, 0)),
        dict(dropout=float("nan")),
    ):
        with pytest.raises(ValueError):
            CNNConfig(**bad)
    with pytest.raises(ValueError, match="weights, more than tfcnn accepts"):
        CNNConfig(n_samples=100_000, filters=(1024, 1024), units=4096)
    big = CNNConfig(n_samples=1000, filters=(64, 64), units=64, batch_norm=(True, True))
    assert big.n_parameters == sum(p.numel() for p in PairCNNNetwork(big).parameters())
    assert big.n_parameters < MAX_PARAMETERS


@pytest.mark.parametrize("width", [12, 13])
def test_window_extremes_route_gradients_like_max_pool_even_on_ties(width: int) -> None:
    """Window max/min and their gradients equal 2x2 max-pool's (of s and of -s): on
    real-valued series (one extreme per window), and when most windows hold tied values
    (the gradient goes to the first extreme, as max-pool's)."""
    from tfcnn.model.network import _WindowExtremes

    g = torch.Generator().manual_seed(width)
    for tied in (False, True):
        if tied:
            s = torch.randint(0, 3, (64, 2, width), generator=g).float()
        else:
            s = torch.randn(64, 2, width, generator=g)
        s.requires_grad_()
        wp = width // 2
        # the four samples of each window in row-major order, as (4, N, Wp) slabs
        slots = s[:, :, : 2 * wp].unflatten(2, (wp, 2)).permute(1, 3, 0, 2).reshape(4, 64, wp)
        weights = torch.randn(2, 64, wp, generator=g)
        (_WindowExtremes.apply(slots) * weights).sum().backward()
        ours = s.grad.clone()
        s.grad = None
        grid = s.unsqueeze(1)
        high = F.max_pool2d(grid, 2)[:, 0, 0]
        low = -F.max_pool2d(-grid, 2)[:, 0, 0]
        (high * weights[0] + low * weights[1]).sum().backward()
        with torch.no_grad():
            torch.testing.assert_close(_WindowExtremes.apply(slots), torch.stack([high, low]))
        torch.testing.assert_close(ours, s.grad, atol=0, rtol=0)


def test_flat_rmsprop_matches_torch_rmsprop_bit_for_bit() -> None:
    """The flat-buffer RMSprop gives exactly torch.optim.RMSprop's weights (several batches,
    gradients accumulated into the shared buffer), and on exit, also after an error,
    every parameter has its own storage again."""
    from tfcnn.model.optimiser import FlatRMSprop

    config = CNNConfig(n_samples=20, filters=(3, 4), units=5, dropout=0.0)
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(6, 16, 2, 20, generator=g), (torch.rand(6, 16, generator=g) > 0.5).float()
    torch.manual_seed(0)
    ours, ref = PairCNNNetwork(config), PairCNNNetwork(config)
    ref.load_state_dict(ours.state_dict())
    theirs = torch.optim.RMSprop(ref.parameters(), lr=1e-2, alpha=0.9, eps=1e-7)
    with FlatRMSprop(ours.parameters(), 1e-2, 0.9, 1e-7) as opt:
        for xb, yb in zip(x, y, strict=True):
            opt.zero_grad()
            F.binary_cross_entropy_with_logits(ours(xb), yb).backward()
            opt.step()
            theirs.zero_grad()
            F.binary_cross_entropy_with_logits(ref(xb), yb).backward()
            theirs.step()
    for (name, a), b in zip(ours.named_parameters(), ref.parameters(), strict=True):
        assert torch.equal(a, b), name
        assert a.grad is None
    storages = {p.untyped_storage().data_ptr() for p in ours.parameters()}
    assert len(storages) == len(list(ours.parameters()))
    with pytest.raises(RuntimeError, match="stop"), FlatRMSprop(ref.parameters(), 1, 0.9, 1):
        raise RuntimeError("stop")
    assert len({p.untyped_storage().data_ptr() for p in ref.parameters()}) == len(storages)


@pytest.mark.parametrize("rows", [59392, 28304, 8, 7, 6, 1])
@pytest.mark.parametrize("cols", [8, 3, 64])
def test_row_addcmul_is_addcmul_bit_for_bit(rows: int, cols: int) -> None:
    """The wide view of batch norm's multiply-adds changes nothing, for any row count,
    contiguous or not (synthetic values)."""
    from tfcnn.model.network import _row_addcmul, _row_addcmul_

    gen = torch.Generator().manual_seed(rows + cols)
    x, d = torch.randn(rows, cols, generator=gen) * 3, torch.randn(rows, cols, generator=gen)
    base, scale, more = (torch.randn(cols, generator=gen) for _ in range(3))
    for xs in (x, torch.randn(cols, rows, generator=gen).t()):  # contiguous, and not
        want = torch.addcmul(base, xs, scale).addcmul_(d, more)
        got = _row_addcmul_(_row_addcmul(base, xs, scale), d, more)
        assert torch.equal(got, want)
