"""Downstream protocols of the RQ paper's Tables 5-6 on frozen (or finetuned) MID-Net.

- Classification (ModelNet40 in the paper): a linear probe on the frozen global feature
  (``rq_core.linear_probe``), or finetuning backbone + linear layer, at training-data ratios
  (ceil(ratio x class size) shapes of every class).
- Segmentation (ShapeNet Part): a 2-FC head on frozen per-point features (or finetuning),
  scored by part IoU: for every test shape, the IoU of each part of its category (a part
  absent from both prediction and ground truth counts 1, the PointNet/O-CNN convention),
  averaged over the parts; I.mIoU averages over shapes, C.mIoU over categories.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from rq_core.checkpoints import load_checkpoint
from rq_core.features import extract_features as extract_features_loop
from rq_core.linear_probe import ProbeSettings, linear_probe
from rq_core.uncertainty import Statistic, accuracy_statistic, miou_statistic
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from rq_points.augmentations import PointAugmentation
from rq_points.data.packed import ShapeDataset, collate_shapes
from rq_points.encoder import MidNet, MidNetConfig, two_fc_head
from rq_points.octree_batch import build_octree_batch

__all__ = [
    "ClassifyConfig",
    "FeatureStore",
    "PointFeatures",
    "SegmentConfig",
    "classify",
    "cpu_threads",
    "load_pretrained",
    "segment",
    "class_ratio_subset",
    "extract_global_features",
    "extract_features",
    "finetune_classification",
    "finetune_segmentation",
    "part_iou",
    "probe_rows",
    "probe_statistics",
    "segmentation_probe",
    "subset_shapes",
]


def _octree_batch(net: MidNet, batch) -> Any:
    """The octree batch of ``batch`` at the encoder's depths."""
    return build_octree_batch(
        batch.points,
        batch.normals,
        batch.batch_ids,
        batch.batch_size,
        depth=net.config.depth,
        full_depth=net.config.full_depth,
    )


def class_ratio_subset(labels: np.ndarray, ratio: float, seed: int = 0) -> np.ndarray:
    """Indices of ceil(ratio x class size) random items of every class (sorted).

    >>> class_ratio_subset(np.array([0, 0, 0, 1, 1, 1, 1, 1, 1, 1]), 0.2, seed=0).size
    3
    """
    if not 0 < ratio <= 1:
        raise ValueError(f"data ratio must be in (0, 1], got {ratio}")
    rng = np.random.default_rng(seed)
    picked = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        picked.append(rng.choice(members, size=math.ceil(ratio * len(members)), replace=False))
    return np.sort(np.concatenate(picked))


def _loader(cache, indices, batch_size: int, max_points: int | None = None) -> DataLoader:
    return DataLoader(
        ShapeDataset(cache, indices, max_points),
        batch_size=batch_size,
        shuffle=False,
        collate_fn=collate_shapes,
    )


def _encoder_batches(net: MidNet, cache, indices, batch_size: int, device):
    """(batch, octree batch) pairs of whole shapes, normalized as for evaluation."""
    evaluate = PointAugmentation(train=False)
    for batch in _loader(cache, indices, batch_size):
        batch = evaluate(batch.to(device))
        ob = _octree_batch(net, batch)
        yield batch, ob


def extract_global_features(
    net: MidNet, cache, indices, *, batch_size: int = 32, device="cpu", progress: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Frozen global features (S, global_channels) and class ids (S,) of the given shapes."""
    net.to(device)

    def encode(pair):
        batch, ob = pair
        _, branches = net.backbone(ob.octree)
        return {"features": net.global_feature(ob.octree, branches), "labels": batch.class_ids}

    out = extract_features_loop(
        encode,
        _encoder_batches(net, cache, indices, batch_size, device),
        modules=net,
        progress=progress,
        desc="global features",
    )
    return out["features"], out["labels"]


@dataclass
class PointFeatures:
    """Frozen per-point features of several shapes: ``features`` (N, F) float32, ``labels``
    (N,) global part ids, ``shape`` (N,) row of the shape in ``class_ids`` (S,)."""

    features: np.ndarray
    labels: np.ndarray
    shape: np.ndarray
    class_ids: np.ndarray


def extract_features(
    net: MidNet,
    cache,
    indices,
    *,
    keep_points: int | None = None,
    batch_size: int = 16,
    device="cpu",
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray, PointFeatures]:
    """Global features (S, G), class ids (S,) and per-point features from one backbone pass
    over whole shapes (through :func:`rq_core.features.extract_features`); ``keep_points``
    keeps that many random points per shape (seeded by the shape's position) to bound the
    memory of probe training sets."""
    net.to(device)
    offset = 0

    def encode(pair):
        nonlocal offset
        batch, ob = pair
        g, f = net.features(ob.octree, batch.points, batch.batch_ids, ob.point_leaf)
        ids = batch.batch_ids.cpu().numpy()
        keep = np.ones(len(ids), bool)
        if keep_points is not None:
            keep[:] = False
            for b in range(batch.batch_size):
                rows = np.flatnonzero(ids == b)
                rng = np.random.default_rng(offset + b)
                keep[rng.permutation(rows)[:keep_points]] = True
        keep_t = torch.from_numpy(keep).to(f.device)
        out = {
            "global": g,
            "class_ids": batch.class_ids,
            "points": f[keep_t],
            "labels": batch.labels[keep_t],
            "shape": ids[keep] + offset,
        }
        offset += batch.batch_size
        return out

    out = extract_features_loop(
        encode,
        _encoder_batches(net, cache, indices, batch_size, device),
        modules=net,
        progress=progress,
        desc="features",
    )
    points = PointFeatures(
        out["points"].astype(np.float32), out["labels"], out["shape"], out["class_ids"]
    )
    return out["global"], out["class_ids"], points


def subset_shapes(features: PointFeatures, shapes: np.ndarray) -> PointFeatures:
    """The point features of the shapes ``shapes`` (rows of ``features.class_ids``), renumbered."""
    keep = np.isin(features.shape, shapes)
    remap = np.full(len(features.class_ids), -1)
    remap[shapes] = np.arange(len(shapes))
    return PointFeatures(
        features.features[keep],
        features.labels[keep],
        remap[features.shape[keep]],
        features.class_ids[shapes],
    )


def part_iou(
    pred: np.ndarray,
    labels: np.ndarray,
    shape: np.ndarray,
    class_ids: np.ndarray,
    part_ranges: Sequence[tuple[int, int]],
) -> dict[str, float]:
    """C.mIoU and I.mIoU (in %) of per-point predictions.

    ``part_ranges[c] = (first, end)``: class c owns global part ids first..end-1.

    >>> r = part_iou(np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0]), np.array([0, 0, 0, 0]),
    ...              np.array([0]), [(0, 2)])
    >>> round(r["instance_miou"], 2)
    58.33
    """
    per_shape, per_class = [], {}
    for s, c in enumerate(class_ids):
        rows = shape == s
        p, g = pred[rows], labels[rows]
        first, end = part_ranges[int(c)]
        ious = []
        for part in range(first, end):
            inter = np.sum((p == part) & (g == part))
            union = np.sum((p == part) | (g == part))
            ious.append(1.0 if union == 0 else inter / union)
        per_shape.append(float(np.mean(ious)))
        per_class.setdefault(int(c), []).append(per_shape[-1])
    return {
        "instance_miou": 100 * float(np.mean(per_shape)),
        "class_miou": 100 * float(np.mean([np.mean(v) for v in per_class.values()])),
        "num_shapes": len(per_shape),
        "per_shape_iou": per_shape,
    }


def _class_mask(
    class_ids: Tensor, part_ranges: Sequence[tuple[int, int]], num_parts: int
) -> Tensor:
    mask = torch.zeros(len(part_ranges), num_parts, dtype=torch.bool)
    for c, (a, b) in enumerate(part_ranges):
        mask[c, a:b] = True
    return mask[class_ids]


def segmentation_probe(
    train: PointFeatures,
    test: PointFeatures,
    part_ranges: Sequence[tuple[int, int]],
    *,
    hidden: int = 256,
    epochs: int = 30,
    lr: float = 1e-3,
    batch_size: int = 4096,
    seeds: Sequence[int] = (42, 43, 44),
) -> dict:
    """Train a 2-FC head (FC-BN-ReLU-FC, the reference ``predict_module``) on frozen point
    features, logits restricted to the parts of each shape's class; report part IoUs.

    Features are standardized with the training statistics. Returns the mean and sample
    std over ``seeds`` of ``class_miou`` and ``instance_miou``.
    """
    num_parts = part_ranges[-1][1]
    mean, std = train.features.mean(0), train.features.std(0) + 1e-6
    xtr = torch.from_numpy((train.features - mean) / std)
    ytr = torch.from_numpy(train.labels).long()
    mtr = _class_mask(torch.from_numpy(train.class_ids[train.shape]).long(), part_ranges, num_parts)
    keep = ytr >= 0
    xtr, ytr, mtr = xtr[keep], ytr[keep], mtr[keep]
    xte = torch.from_numpy((test.features - mean) / std)
    mte = _class_mask(torch.from_numpy(test.class_ids[test.shape]).long(), part_ranges, num_parts)
    runs = []
    for seed in seeds:
        torch.manual_seed(seed)
        head = two_fc_head(xtr.shape[1], hidden, num_parts)
        opt = torch.optim.Adam(head.parameters(), lr=lr)
        for _ in range(epochs):
            head.train()
            for rows in torch.randperm(len(xtr)).split(batch_size):
                if len(rows) < 2:
                    continue
                logits = head(xtr[rows]).masked_fill(~mtr[rows], float("-inf"))
                loss = F.cross_entropy(logits, ytr[rows])
                opt.zero_grad()
                loss.backward()
                opt.step()
        head.eval()
        with torch.no_grad():
            pred = torch.cat(
                [
                    head(x).masked_fill(~m, float("-inf")).argmax(1)
                    for x, m in zip(xte.split(batch_size), mte.split(batch_size))
                ]
            ).numpy()
        runs.append(part_iou(pred, test.labels, test.shape, test.class_ids, part_ranges))
    out = {
        "seeds": list(seeds),
        "num_train_shapes": len(train.class_ids),
        "num_test_shapes": len(test.class_ids),
        # Per seed, each test shape's mean part IoU (0..1): the items of the bootstrap
        # intervals and paired comparisons (rq_core.uncertainty.miou_statistic).
        "shape_iou_per_seed": [r["per_shape_iou"] for r in runs],
        "test_class_ids": [int(c) for c in test.class_ids],
    }
    for key in ("class_miou", "instance_miou"):
        vals = np.array([r[key] for r in runs])
        out[f"{key}_mean"] = float(vals.mean())
        out[f"{key}_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
    return out


def finetune_classification(
    net: MidNet,
    cache,
    train_idx,
    test_idx,
    *,
    epochs: int = 20,
    lr: float = 0.01,
    weight_decay: float = 5e-4,
    batch_size: int = 16,
    device="cpu",
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Finetune backbone + a linear layer on the global feature (SGD, cosine lr), with the
    pretraining augmentations minus RQ; returns test accuracy (%)."""
    torch.manual_seed(seed)
    net.to(device)
    head = nn.Linear(net.config.global_channels, cache.num_classes).to(device)
    params = list(net.parameters()) + list(head.parameters())
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    train_loader = DataLoader(
        ShapeDataset(cache, train_idx),
        batch_size=batch_size,
        shuffle=True,
        collate_fn=collate_shapes,
        drop_last=len(train_idx) > batch_size,
    )
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(
        opt, T_max=max(1, epochs * len(train_loader))
    )
    augment = PointAugmentation(rq_bins=0)
    g = torch.Generator(device=device).manual_seed(seed)
    for _ in tqdm(range(epochs), desc="finetune", disable=not progress):
        net.train()
        head.train()
        for batch in train_loader:
            batch = augment(batch.to(device), g)
            ob = _octree_batch(net, batch)
            _, branches = net.backbone(ob.octree)
            loss = F.cross_entropy(head(net.global_feature(ob.octree, branches)), batch.class_ids)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    feats, labels = extract_global_features(
        net, cache, test_idx, batch_size=batch_size, device=device, progress=False
    )
    with torch.no_grad():
        head.eval()
        pred = head(torch.from_numpy(feats).to(device)).argmax(1).cpu().numpy()
    return {
        "accuracy": 100 * float((pred == labels).mean()),
        "num_train": len(train_idx),
        "num_test": len(test_idx),
    }


def finetune_segmentation(
    net: MidNet,
    cache,
    train_idx,
    test_idx,
    part_ranges: Sequence[tuple[int, int]],
    *,
    epochs: int = 20,
    lr: float = 0.01,
    weight_decay: float = 5e-4,
    batch_size: int = 16,
    hidden: int = 256,
    device="cpu",
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Finetune backbone + the 2-FC head on per-point features (SGD, cosine lr, the
    pretraining augmentations minus RQ), logits restricted to each shape's category parts;
    returns the test C.mIoU and I.mIoU (%)."""
    torch.manual_seed(seed)
    net.to(device)
    num_parts = part_ranges[-1][1]
    head = two_fc_head(net.point_feature_dim, hidden, num_parts).to(device)
    opt = torch.optim.SGD(
        list(net.parameters()) + list(head.parameters()),
        lr=lr,
        momentum=0.9,
        weight_decay=weight_decay,
    )
    loader = DataLoader(
        ShapeDataset(cache, train_idx),
        batch_size=batch_size,
        shuffle=True,
        collate_fn=collate_shapes,
        drop_last=len(train_idx) > batch_size,
    )
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs * len(loader)))
    augment = PointAugmentation(rq_bins=0)
    g = torch.Generator(device=device).manual_seed(seed)

    def logits_of(batch):
        ob = _octree_batch(net, batch)
        feats = net.point_features(ob.octree, batch.points, batch.batch_ids, ob.point_leaf)
        mask = _class_mask(batch.class_ids.cpu()[batch.batch_ids.cpu()], part_ranges, num_parts).to(
            device
        )
        return head(feats).masked_fill(~mask, float("-inf"))

    for _ in tqdm(range(epochs), desc="finetune segmentation", disable=not progress):
        net.train()
        head.train()
        for batch in loader:
            batch = augment(batch.to(device), g)
            keep = batch.labels >= 0
            loss = F.cross_entropy(logits_of(batch)[keep], batch.labels[keep])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    net.eval()
    head.eval()
    preds, labels, shape, classes, offset = [], [], [], [], 0
    with torch.no_grad():
        for batch in _loader(cache, test_idx, batch_size):
            batch = PointAugmentation(train=False)(batch.to(device))
            preds.append(logits_of(batch).argmax(1).cpu().numpy())
            labels.append(batch.labels.cpu().numpy())
            shape.append(batch.batch_ids.cpu().numpy() + offset)
            classes.append(batch.class_ids.cpu().numpy())
            offset += batch.batch_size
    r = part_iou(
        np.concatenate(preds),
        np.concatenate(labels),
        np.concatenate(shape),
        np.concatenate(classes),
        part_ranges,
    )
    r["num_train"] = len(train_idx)
    return r


# ------------------------------------------------------------------------ the protocols


@dataclass
class ClassifyConfig:
    """Classification at training-data ratios (the paper's Table 5 uses 1%..100%)."""

    ratios: list[float] = field(default_factory=lambda: [0.01, 0.02, 0.05, 0.1, 0.2, 1.0])
    linear: bool = True
    finetune: bool = False
    finetune_epochs: int = 100
    finetune_lr: float = 0.01
    seeds: list[int] = field(default_factory=lambda: [42, 43, 44])
    probe_lr: float = 1e-3
    probe_epochs: int = 200


@dataclass
class SegmentConfig:
    """Segmentation at training-data ratios (the paper's Table 6)."""

    ratios: list[float] = field(default_factory=lambda: [0.01, 0.05, 1.0])
    points_per_shape: int = 2048
    hidden: int = 256  # 128 * factor in predict_module
    epochs: int = 30
    lr: float = 1e-3
    batch_size: int = 1024  # points per step
    finetune: bool = False
    finetune_epochs: int = 100
    finetune_lr: float = 0.01
    seeds: list[int] = field(default_factory=lambda: [42, 43, 44])


@contextlib.contextmanager
def cpu_threads(n: int):
    """Run a block with ``n`` torch CPU threads (restored after). The probes train tiny heads:
    one thread is as fast on an idle machine and ~20x faster on a loaded one (OpenMP threads
    of small ops wait on each other when the cores are oversubscribed)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def load_pretrained(spec: str, config: MidNetConfig, seed: int) -> tuple[MidNet, str]:
    """The backbone ``spec`` names and its method (a results table's row name).

    ``spec``: a pretraining checkpoint (its network sizes win over ``config``; its method is
    the ``method`` of the run config it carries, else ``rq`` when its augmentation quantized
    and ``midfc`` when not), or ``random`` (the initialization a pretraining with ``seed``
    starts from; method ``random``)."""
    if spec == "random":
        torch.manual_seed(seed)
        return MidNet(config), "random"
    path = Path(spec)
    if not path.is_file():
        raise FileNotFoundError(
            f"pretrained checkpoint {path} not found (run `rq-mid-net pretrain` first)"
        )
    ckpt = load_checkpoint(path)
    hparams = ckpt.get("hyper_parameters", {})
    net_cfg = hparams.get("net")
    net = MidNet(MidNetConfig(**net_cfg) if net_cfg else config)
    state = {k[len("net.") :]: v for k, v in ckpt["state_dict"].items() if k.startswith("net.")}
    net.load_state_dict(state)
    method = (ckpt.get("config") or {}).get("method")
    if not method:
        method = "rq" if (hparams.get("augmentation") or {}).get("rq_bins", 0) > 0 else "midfc"
    return net, str(method)


class FeatureStore:
    """Features of one frozen backbone, computed once per (cache, split) and shared by the
    tasks; training splits keep ``points_per_shape`` points per shape."""

    def __init__(self, net: MidNet, device: str, points_per_shape: int) -> None:
        self.net, self.device, self.points_per_shape = net, device, points_per_shape
        self._done: dict = {}

    def get(self, cache, split: str) -> tuple[np.ndarray, np.ndarray, PointFeatures]:
        key = (cache.path, split)
        if key not in self._done:
            keep = self.points_per_shape if split == "train" else None
            self._done[key] = extract_features(
                self.net, cache, cache.split_indices(split), keep_points=keep, device=self.device
            )
        return self._done[key]


def classify(store: FeatureStore, cache, config: ClassifyConfig) -> dict:
    """Linear probe (and optional finetune) on the frozen global feature at each ratio of
    ``config``; accuracies in %. Returns ``{"linear": {ratio: ...}, "finetune": {...}}``."""
    xtr, ytr, _ = store.get(cache, "train")
    xva, yva, _ = store.get(cache, "valid")
    xte, yte, _ = store.get(cache, "test")
    out: dict[str, Any] = {"linear": {}, "finetune": {}}
    settings = ProbeSettings(lr=config.probe_lr, max_epochs=config.probe_epochs)
    tr, te = cache.split_indices("train"), cache.split_indices("test")
    for ratio in config.ratios:
        sub = class_ratio_subset(ytr, ratio, seed=0)
        if config.linear:
            with cpu_threads(1):
                r = linear_probe(
                    (xtr[sub], ytr[sub]),
                    (xva, yva),
                    (xte, yte),
                    seeds=tuple(config.seeds),
                    settings=settings,
                    return_predictions=True,
                )
            predictions = r.pop("predictions")
            # rq_core reports accuracy as a fraction; the paper's tables use percent.
            linear = {
                k: (100 * v if k.startswith("accuracy") else v)
                for k, v in r.items()
                if not k.endswith("per_seed")
            }
            # Per seed, whether each test shape was right: the items of the bootstrap
            # intervals and paired comparisons (rq_core.uncertainty.accuracy_statistic).
            linear["correct_per_seed"] = predictions.correct.astype(int).tolist()
            linear["test_labels"] = [int(y) for y in yte]
            out["linear"][str(ratio)] = linear
        if config.finetune:
            out["finetune"][str(ratio)] = finetune_classification(
                copy.deepcopy(store.net),
                cache,
                tr[sub],
                te,
                epochs=config.finetune_epochs,
                lr=config.finetune_lr,
                device=store.device,
            )
    return out


def segment(store: FeatureStore, cache, config: SegmentConfig) -> dict:
    """2-FC head on frozen point features (and optional finetune) at each ratio of
    ``config``; C.mIoU / I.mIoU in %. Returns ``{ratio: ..., "finetune": {ratio: ...}}``."""
    _, _, train_feats = store.get(cache, "train")
    _, _, test_feats = store.get(cache, "test")
    if not cache.part_names:
        raise ValueError(f"{cache.path} has no part names: segmentation needs part-labelled data")
    ranges = [(a, a + len(p)) for a, p in zip(cache.part_offsets, cache.part_names)]
    out: dict[str, Any] = {}
    tr, te = cache.split_indices("train"), cache.split_indices("test")
    for ratio in config.ratios:
        sub = class_ratio_subset(train_feats.class_ids, ratio, seed=0)
        if config.finetune:
            out.setdefault("finetune", {})[str(ratio)] = finetune_segmentation(
                copy.deepcopy(store.net),
                cache,
                tr[sub],
                te,
                ranges,
                epochs=config.finetune_epochs,
                lr=config.finetune_lr,
                hidden=config.hidden,
                device=store.device,
            )
        with cpu_threads(1):
            out[str(ratio)] = segmentation_probe(
                subset_shapes(train_feats, sub),
                test_feats,
                ranges,
                hidden=config.hidden,
                epochs=config.epochs,
                lr=config.lr,
                batch_size=config.batch_size,
                seeds=tuple(config.seeds),
            )
    return out


# ------------------------------------------------------------------------ results


def _ratios(results: dict[str, dict], task: str, mode: str | None = None) -> list[str]:
    found = set()
    for r in results.values():
        section = r.get(task) or {}
        section = section.get(mode, {}) if mode else section
        found |= {k for k in section if k != "finetune"}
    return sorted(found, key=float)


def probe_statistics(results: dict[str, dict]) -> dict[str, dict[str, Statistic]]:
    """method -> {column -> Statistic} from the per-item outputs of the probes: each linear
    probe's per-seed correctness of every test shape, each segmentation head's per-seed IoU
    of every test shape (the same test shapes for every method)."""
    cls_ratios = _ratios(results, "classify", "linear")
    seg_ratios = _ratios(results, "segment")
    out: dict[str, dict[str, Statistic]] = {}
    for name, r in results.items():
        stats: dict[str, Statistic] = {}
        for ratio in cls_ratios:
            x = (r.get("classify") or {}).get("linear", {}).get(ratio)
            if x:
                stats[f"cls lin {float(ratio):.0%}"] = accuracy_statistic(
                    np.asarray(x["correct_per_seed"], bool), labels=np.asarray(x["test_labels"])
                )
        for ratio in seg_ratios:
            x = (r.get("segment") or {}).get(ratio)
            if x:
                ious, classes = np.asarray(x["shape_iou_per_seed"]), np.asarray(x["test_class_ids"])
                for short, average in (("C", "class"), ("I", "instance")):
                    stats[f"seg {float(ratio):.0%} {short}.mIoU"] = miou_statistic(
                        ious, classes, average=average
                    )
        out[name] = stats
    return out


def probe_rows(results: dict[str, dict]) -> list[dict]:
    """Long-form rows (method, task, ratio, metric, value) for ``results.csv``."""
    rows = []
    for name, r in results.items():
        for mode, per_ratio in (r.get("classify") or {}).items():
            for ratio, x in per_ratio.items():
                value = x.get("accuracy_mean", x.get("accuracy"))
                rows.append(
                    {
                        "method": name,
                        "task": f"classify_{mode}",
                        "ratio": ratio,
                        "metric": "accuracy",
                        "value": value,
                    }
                )
        segment_results = r.get("segment") or {}
        for ratio, x in segment_results.get("finetune", {}).items():
            for metric in ("class_miou", "instance_miou"):
                rows.append(
                    {
                        "method": name,
                        "task": "segment_finetune",
                        "ratio": ratio,
                        "metric": metric,
                        "value": x[metric],
                    }
                )
        for ratio, x in segment_results.items():
            if ratio == "finetune":
                continue
            for metric in ("class_miou", "instance_miou"):
                rows.append(
                    {
                        "method": name,
                        "task": "segment",
                        "ratio": ratio,
                        "metric": metric,
                        "value": x[f"{metric}_mean"],
                    }
                )
    return rows
