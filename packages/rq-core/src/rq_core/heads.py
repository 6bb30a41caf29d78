"""Projection and prediction heads as data: a list of ``(in, out, norm, activation)`` blocks.

Each published head is a few-line subclass of :class:`MLPHead` whose docstring quotes the
paper's sizes (lightly's "blocks, not a framework" layout).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

__all__ = [
    "BYOLPredictionHead",
    "BYOLProjectionHead",
    "MLPHead",
    "SimCLRProjectionHead",
]

Block = tuple[int, int, nn.Module | None, nn.Module | None]


class MLPHead(nn.Module):
    """A stack of ``Linear(in, out)`` -> optional norm -> optional activation blocks.

    Args:
        blocks: one ``(in_features, out_features, norm, activation)`` per layer; ``norm`` and
            ``activation`` are modules or ``None``. A linear layer followed by a norm has no
            bias (the norm's shift makes it redundant).

    Shapes: ``(B, blocks[0].in)`` -> ``(B, blocks[-1].out)``.

    >>> import torch
    >>> head = MLPHead([(8, 16, nn.BatchNorm1d(16), nn.ReLU()), (16, 4, None, None)])
    >>> head(torch.randn(5, 8)).shape
    torch.Size([5, 4])
    """

    def __init__(self, blocks: Sequence[Block]) -> None:
        super().__init__()
        if len(blocks) == 0:
            raise ValueError("MLPHead needs at least one (in, out, norm, activation) block")
        layers: list[nn.Module] = []
        previous_out: int | None = None
        for index, block in enumerate(blocks):
            if len(block) != 4:
                raise ValueError(
                    f"block {index} must be (in_features, out_features, norm, activation), "
                    f"got {len(block)} items"
                )
            in_features, out_features, norm, activation = block
            if in_features < 1 or out_features < 1:
                raise ValueError(
                    f"block {index}: sizes must be >= 1, got in={in_features}, out={out_features}"
                )
            if previous_out is not None and in_features != previous_out:
                raise ValueError(
                    f"block {index} takes {in_features} features but block {index - 1} "
                    f"gives {previous_out}"
                )
            layers.append(nn.Linear(in_features, out_features, bias=norm is None))
            if norm is not None:
                layers.append(norm)
            if activation is not None:
                layers.append(activation)
            previous_out = out_features
        self.layers = nn.Sequential(*layers)
        self.input_dim = blocks[0][0]
        self.output_dim = blocks[-1][1]

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 2 or x.shape[1] != self.input_dim:
            raise ValueError(
                f"{type(self).__name__} expects (batch, {self.input_dim}), got {tuple(x.shape)}"
            )
        return self.layers(x)


class BYOLProjectionHead(MLPHead):
    """BYOL's projector (Grill et al., 2020, Sec. 3.3): "a multi-layer perceptron (MLP) ...
    a linear layer with output size 4096 followed by batch normalization, rectified linear
    units (ReLU), and a final linear layer with output dimension 256".

    >>> import torch
    >>> BYOLProjectionHead(2048)(torch.randn(4, 2048)).shape
    torch.Size([4, 256])
    """

    def __init__(self, input_dim: int, hidden_dim: int = 4096, output_dim: int = 256) -> None:
        super().__init__(
            [
                (input_dim, hidden_dim, nn.BatchNorm1d(hidden_dim), nn.ReLU(inplace=True)),
                (hidden_dim, output_dim, None, None),
            ]
        )


class BYOLPredictionHead(MLPHead):
    """BYOL's predictor (Grill et al., 2020, Sec. 3.3): the same architecture as the
    projector, 256 -> 4096 (BN, ReLU) -> 256.

    >>> import torch
    >>> BYOLPredictionHead()(torch.randn(4, 256)).shape
    torch.Size([4, 256])
    """

    def __init__(self, input_dim: int = 256, hidden_dim: int = 4096, output_dim: int = 256) -> None:
        super().__init__(
            [
                (input_dim, hidden_dim, nn.BatchNorm1d(hidden_dim), nn.ReLU(inplace=True)),
                (hidden_dim, output_dim, None, None),
            ]
        )


class SimCLRProjectionHead(MLPHead):
    """SimCLR's projector (Chen et al., 2020, Sec. 2.1 and B.9): ``Linear -> BN -> ReLU ->
    Linear`` with a 128-d output; ``batch_norm=False`` gives the v1 head without BN.

    >>> import torch
    >>> SimCLRProjectionHead(512, 512)(torch.randn(4, 512)).shape
    torch.Size([4, 128])
    """

    def __init__(
        self, input_dim: int, hidden_dim: int, output_dim: int = 128, batch_norm: bool = True
    ) -> None:
        super().__init__(
            [
                (
                    input_dim,
                    hidden_dim,
                    nn.BatchNorm1d(hidden_dim) if batch_norm else None,
                    nn.ReLU(inplace=True),
                ),
                (hidden_dim, output_dim, None, None),
            ]
        )
