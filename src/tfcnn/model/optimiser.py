"""RMSprop over one flat buffer: the published optimiser with a few steps per batch.

``torch.optim.RMSprop`` updates each parameter tensor in turn; on CPU even its
``foreach`` form runs the element-wise steps tensor by tensor. The published network has
a dozen small tensors (7,555 weights), so each batch paid about 150 small operations for
the update alone: several percent of a training step. :class:`FlatRMSprop` keeps every
parameter and gradient as a view of one contiguous buffer and updates that buffer in five
operations, with the same arithmetic element by element (so the same weights, bit for
bit, as ``torch.optim.RMSprop`` without momentum, centring or weight decay, which is
RMSprop as Keras defines it).
"""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType

import torch
from torch import nn


class FlatRMSprop:
    """RMSprop (``p -= lr * g / (sqrt(v) + eps)``, ``v = rho * v + (1 - rho) * g**2``).

    Use as a context manager: on entry the parameters become views of one buffer (their
    values kept), and their gradients views of another, into which backward passes
    accumulate; on exit each parameter gets its own storage again (model files need
    tensors that do not share memory), also when training stops with an error.
    """

    def __init__(self, params: Iterable[nn.Parameter], lr: float, rho: float, eps: float) -> None:
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.rho, self.eps = float(lr), float(rho), float(eps)
        size = sum(p.numel() for p in self.params)
        dtype = self.params[0].dtype if self.params else torch.float32
        self.values = torch.empty(size, dtype=dtype)
        self.grads = torch.zeros(size, dtype=dtype)
        self.square_avg = torch.zeros(size, dtype=dtype)

    def __enter__(self) -> FlatRMSprop:
        offset = 0
        with torch.no_grad():
            for p in self.params:
                k = p.numel()
                self.values[offset : offset + k].copy_(p.reshape(-1))
                p.data = self.values[offset : offset + k].view_as(p)
                p.grad = self.grads[offset : offset + k].view_as(p)
                offset += k
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        for p in self.params:
            p.data = p.data.clone()
            p.grad = None

    def zero_grad(self) -> None:
        """Zero the gradients (the buffer stays, so backward adds into it)."""
        self.grads.zero_()

    @torch.no_grad()
    def step(self) -> None:
        """One update of every parameter from the accumulated gradients."""
        g = self.grads
        self.square_avg.mul_(self.rho).addcmul_(g, g, value=1.0 - self.rho)
        avg = self.square_avg.sqrt().add_(self.eps)
        self.values.addcdiv_(g, avg, value=-self.lr)
