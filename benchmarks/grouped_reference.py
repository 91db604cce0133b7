"""The pair CNN written the plain way, as the benchmark's slow reference.

Same layers and Keras semantics as ``tfcnn.model.network.PairCNNNetwork``, but each separable
conv is an ``nn.Conv2d`` with ``groups=C`` (depthwise, no bias) followed by a 1x1
``nn.Conv2d`` (pointwise, with bias), and Keras 'same' padding is an explicit ``F.pad``
(the extra row/column of an even kernel goes bottom/right). Nothing here imports tfcnn:
weights come in through :meth:`GroupedPairCNN.load_tfcnn_state`, which only maps tensor
names and layouts, so the reference shares no code with the fast path it is timed against.

:func:`train_reference` is the training loop of ``PairCNN.fit`` restated (RMSprop, BCE
with logits, per-epoch shuffle, running loss / accuracy / AUROC bookkeeping), and
:func:`reference_predict_proba` is ``PairCNN.predict_proba`` restated (batches of 512,
eval mode, no grad).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from torch import nn

KERAS_BN_EPS = 1e-3
KERAS_BN_MOMENTUM = 0.99


def _same(kernel: int) -> tuple[int, int]:
    """Keras 'same' padding (before, after): the odd extra goes after."""
    return (kernel - 1) // 2, kernel - 1 - (kernel - 1) // 2


@dataclass(frozen=True)
class ReferenceConfig:
    n_samples: int = 232
    filters: tuple[int, int] = (4, 8)
    units: int = 8
    batch_norm: tuple[bool, bool] = (False, True)
    dropout: float = 0.01
    kernel_width: int = 5
    kernel_height: int = 2


class GroupedSeparableConv(nn.Module):
    """Keras SeparableConv2D: grouped depthwise conv2d, then pointwise 1x1 conv2d."""

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, int]) -> None:
        super().__init__()
        kh, kw = kernel
        top, bottom = _same(kh)
        left, right = _same(kw)
        self.pad = (left, right, top, bottom)
        self.depthwise = nn.Conv2d(
            in_channels, in_channels, (kh, kw), groups=in_channels, bias=False
        )
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=True)
        # Keras glorot-uniform fans (depthwise kernel (kh, kw, C, 1)), zero bias.
        lim = math.sqrt(6.0 / (kh * kw * in_channels + kh * kw))
        nn.init.uniform_(self.depthwise.weight, -lim, lim)
        nn.init.xavier_uniform_(self.pointwise.weight)
        nn.init.zeros_(self.pointwise.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(F.pad(x, self.pad)))


class GroupedPairCNN(nn.Module):
    """Input (N, 2, W) -> logits (N,), via grouped 2-D convolutions."""

    def __init__(self, config: ReferenceConfig) -> None:
        super().__init__()
        self.config = config
        f1, f2 = config.filters
        kernel = (config.kernel_height, config.kernel_width)
        self.conv1 = GroupedSeparableConv(1, f1, kernel)
        self.norm1 = self._bn(f1) if config.batch_norm[0] else None
        self.conv2 = GroupedSeparableConv(f1, f2, kernel)
        self.norm2 = self._bn(f2) if config.batch_norm[1] else None
        self.dense = nn.Linear((config.n_samples // 2) * f2, config.units)
        self.dropout = nn.Dropout(config.dropout)
        self.out = nn.Linear(config.units, 1)
        for layer in (self.dense, self.out):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    @staticmethod
    def _bn(channels: int) -> nn.BatchNorm2d:
        return nn.BatchNorm2d(channels, eps=KERAS_BN_EPS, momentum=1.0 - KERAS_BN_MOMENTUM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.conv1(x.unsqueeze(1)))
        if self.norm1 is not None:
            h = self.norm1(h)
        h = F.max_pool2d(h, kernel_size=2, stride=2)
        h = F.relu(self.conv2(h))
        if self.norm2 is not None:
            h = self.norm2(h)
        h = h.permute(0, 2, 3, 1).flatten(1)  # channels-last flatten, as Keras
        h = F.relu(self.dense(h))
        return self.out(self.dropout(h)).squeeze(1)

    @torch.no_grad()
    def load_tfcnn_state(self, state: Mapping[str, torch.Tensor]) -> GroupedPairCNN:
        """Copy weights from a tfcnn PairCNNNetwork state dict (names and layouts only).

        tfcnn keeps the depthwise kernel as (C, kh, kw) and the pointwise as (O, C);
        nn.Conv2d wants (C, 1, kh, kw) and (O, C, 1, 1).
        """
        own = self.state_dict()
        mapped: dict[str, torch.Tensor] = {}
        for key, value in state.items():
            if key.endswith(".depthwise"):
                mapped[key + ".weight"] = value.unsqueeze(1)
            elif key.endswith(".pointwise"):
                mapped[key + ".weight"] = value[:, :, None, None]
            elif key.startswith("conv") and key.endswith(".bias"):
                mapped[key.replace(".bias", ".pointwise.bias")] = value
            else:
                mapped[key] = value
        if set(mapped) != set(own):
            raise ValueError(
                f"state does not match the reference: missing {sorted(set(own) - set(mapped))}"
                f", unexpected {sorted(set(mapped) - set(own))}"
            )
        for key, value in mapped.items():
            own[key].copy_(value)
        return self


def train_reference(
    net: GroupedPairCNN,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    batch_size: int = 512,
    learning_rate: float = 1e-3,
    rho: float = 0.9,
    epsilon: float = 1e-7,
    seed: int = 0,
    time_budget: float | None = None,
) -> tuple[list[dict], float]:
    """PairCNN.fit's loop on the reference network.

    Returns (per-epoch history, seconds). With ``time_budget`` the loop stops after the
    first epoch that ends past the budget, so ``len(history)`` may be < ``epochs``.
    """
    opt = torch.optim.RMSprop(net.parameters(), lr=learning_rate, alpha=rho, eps=epsilon)
    shuffle = torch.Generator().manual_seed(seed)
    n = X.shape[0]
    history: list[dict] = []
    y_np = y.numpy()
    start_time = time.perf_counter()
    for epoch in range(1, epochs + 1):
        net.train()
        order = torch.randperm(n, generator=shuffle)
        total_loss, total_correct = 0.0, 0
        logits_seen = torch.empty(n)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            opt.zero_grad(set_to_none=True)
            logits = net(X[idx])
            loss = F.binary_cross_entropy_with_logits(logits, y[idx])
            loss.backward()
            opt.step()
            with torch.no_grad():
                total_loss += float(loss) * len(idx)
                total_correct += int(((logits >= 0).float() == y[idx]).sum())
                logits_seen[idx] = logits
        history.append(
            {
                "epoch": epoch,
                "loss": total_loss / n,
                "accuracy": total_correct / n,
                "auroc": float(roc_auc_score(y_np, logits_seen.numpy())),
            }
        )
        if time_budget is not None and time.perf_counter() - start_time > time_budget:
            break
    return history, time.perf_counter() - start_time


def reference_predict_proba(
    net: GroupedPairCNN, X: np.ndarray, batch_size: int = 512
) -> np.ndarray:
    """Probabilities (N, 2), computed exactly as PairCNN.predict_proba does."""
    X_t = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    net.eval()
    out = np.empty(X_t.shape[0], dtype=np.float64)
    with torch.no_grad():
        for start in range(0, X_t.shape[0], batch_size):
            out[start : start + batch_size] = (
                torch.sigmoid(net(X_t[start : start + batch_size])).double().numpy()
            )
    return np.column_stack([1.0 - out, out])
