"""The DABS domain-agnostic transformer: embed each input, concatenate tokens, encode.

Sizes are DABS ``conf/model/transformer.yaml`` (also the RQ paper, section 5.4 / Table 9):
12 layers, 8 heads of 64, hidden 256, MLP 512, dropout 0.1 (also on the embeddings),
pre-norm blocks, a CLS token and learned positions, mean over all tokens (CLS included, as
the reference does), and a head LayerNorm + Linear to 128 for the pretraining objective.
``embed`` and ``encode`` are separate so that pretraining algorithms act on the embeddings
in between (RQ, e-Mix, ShED).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rq_dabs.embedding import build_embedding
from rq_dabs.specs import InputSpec

__all__ = ["DomainAgnosticTransformer", "TransformerConfig"]


@dataclass
class TransformerConfig:
    """Encoder sizes; defaults are DABS ``conf/model/transformer.yaml``."""

    dim: int = 256  # embed_dim = dim = 256 (transformer.yaml)
    depth: int = 12  # depth: 12
    heads: int = 8  # heads: 8
    dim_head: int = 64  # dim_head: 64
    mlp_dim: int = 512  # mlp_dim: 512
    dropout: float = 0.1  # dropout: 0.1
    emb_dropout: float = 0.1  # emb_dropout: 0.1
    pool: str = "mean"  # pool: mean
    out_dim: int = 128  # out_dim: 128 (the pretraining head)

    def __post_init__(self) -> None:
        if self.pool not in ("mean", "cls"):
            raise ValueError(f"pool must be 'mean' or 'cls', got {self.pool!r}")
        if min(self.dim, self.depth, self.heads, self.dim_head, self.mlp_dim, self.out_dim) < 1:
            raise ValueError(f"transformer sizes must be >= 1, got {self}")
        if not (0.0 <= self.dropout < 1.0 and 0.0 <= self.emb_dropout < 1.0):
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}, {self.emb_dropout}")


class _SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dim_head: int, dropout: float) -> None:
        super().__init__()
        inner = heads * dim_head
        self.heads, self.dim_head = heads, dim_head
        self.to_qkv = nn.Linear(dim, 3 * inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, dim), nn.Dropout(dropout))

    def forward(self, x: Tensor) -> Tensor:
        b, n, _ = x.shape
        q, k, v = self.to_qkv(x).view(b, n, 3, self.heads, self.dim_head).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)  # softmax(q k^T / sqrt(dim_head)) v
        return self.to_out(out.transpose(1, 2).reshape(b, n, self.heads * self.dim_head))


class _PreNormBlock(nn.Module):
    """x + Attn(LN(x)), then x + MLP(LN(x)) with GELU."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.attn_norm = nn.LayerNorm(cfg.dim)
        self.attn = _SelfAttention(cfg.dim, cfg.heads, cfg.dim_head, cfg.dropout)
        self.mlp_norm = nn.LayerNorm(cfg.dim)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.dim, cfg.mlp_dim),
            nn.GELU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.mlp_dim, cfg.dim),
            nn.Dropout(cfg.dropout),
        )

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.attn_norm(x))
        return x + self.mlp(self.mlp_norm(x))


class DomainAgnosticTransformer(nn.Module):
    """DABS encoder for any list of input specs.

    Args:
        specs: one spec per input (a domain's ``spec()``); their tokens are concatenated.
        config: sizes (:class:`TransformerConfig`).

    Shapes: ``embed(inputs)`` -> ``(B, L, dim)`` with ``L = sum(spec.num_tokens)``;
    ``encode(tokens)`` -> ``(B, out_dim)`` (``prehead=True``: the pooled ``(B, dim)`` feature
    used for transfer; ``prepool=True``: every position ``(B, L + 1, dim)``, CLS first).

    >>> from rq_dabs.specs import Input1dSpec
    >>> model = DomainAgnosticTransformer([Input1dSpec(320, 5, 52)], TransformerConfig(depth=1))
    >>> model([torch.zeros(2, 320, 52)]).shape, model([torch.zeros(2, 320, 52)], prehead=True).shape
    (torch.Size([2, 128]), torch.Size([2, 256]))
    """

    def __init__(self, specs: Sequence[InputSpec], config: TransformerConfig | None = None) -> None:
        super().__init__()
        if not specs:
            raise ValueError("a domain needs at least one input spec")
        cfg = config or TransformerConfig()
        self.config = cfg
        self.specs = list(specs)
        self.embed_modules = nn.ModuleList([build_embedding(s, cfg.dim) for s in self.specs])
        self.num_tokens = sum(m.num_tokens for m in self.embed_modules)
        # torch.randn init as in the reference (transformer.py).
        self.pos_embedding = nn.Parameter(torch.randn(1, self.num_tokens + 1, cfg.dim))
        self.cls_token = nn.Parameter(torch.randn(1, 1, cfg.dim))
        self.emb_dropout = nn.Dropout(cfg.emb_dropout)
        self.blocks = nn.ModuleList([_PreNormBlock(cfg) for _ in range(cfg.depth)])
        self.head = nn.Sequential(nn.LayerNorm(cfg.dim), nn.Linear(cfg.dim, cfg.out_dim))

    @property
    def feature_dim(self) -> int:
        return self.config.dim

    def hyperparameters(self) -> dict:
        """What is needed to rebuild this model (specs + sizes), e.g. for a checkpoint."""
        return {
            "specs": [asdict(s) for s in self.specs],
            "config": asdict(self.config),
        }

    def embed(self, inputs: Sequence[Tensor]) -> Tensor:
        if len(inputs) != len(self.embed_modules):
            raise ValueError(f"expected {len(self.embed_modules)} inputs, got {len(inputs)}")
        return torch.cat([m(x) for m, x in zip(self.embed_modules, inputs)], dim=1)

    def encode(self, tokens: Tensor, *, prehead: bool = False, prepool: bool = False) -> Tensor:
        b, n, d = tokens.shape
        if n != self.num_tokens or d != self.config.dim:
            raise ValueError(
                f"expected tokens (B, {self.num_tokens}, {self.config.dim}), "
                f"got {tuple(tokens.shape)}"
            )
        x = torch.cat([self.cls_token.expand(b, -1, -1), tokens], dim=1) + self.pos_embedding
        x = self.emb_dropout(x)
        for block in self.blocks:
            x = block(x)
        if prepool:
            return x
        pooled = x.mean(dim=1) if self.config.pool == "mean" else x[:, 0]
        if prehead:
            return pooled
        return self.head(pooled)

    def forward(self, inputs: Sequence[Tensor], *, prehead: bool = False) -> Tensor:
        return self.encode(self.embed(inputs), prehead=prehead)
