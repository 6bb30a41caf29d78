"""``rq-mid-net <command> --config FILE.yaml [key.sub=value ...]``.

Commands: ``prepare`` (HDF5 caches), ``pretrain`` (MID-Net, RQ per ``augmentation.rq_bins``),
``classify`` (linear probe / finetune on the global feature at data ratios), ``segment``
(2-FC head on frozen point features), ``demo`` (all of it on the embedded procedural shapes:
random init vs MID-FC vs MID-FC + RQ).
"""

from __future__ import annotations

import contextlib
import copy
import csv
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from rq_core.checkpoints import load_checkpoint
from rq_core.config import app_config_dir, cli_main, save_config
from rq_core.linear_probe import ProbeSettings, linear_probe
from rq_core.seeding import process_rank
from rq_core.training import TrainerConfig, fit, resumable_loader
from rq_points.evaluation import (
    class_ratio_subset,
    extract_features,
    finetune_classification,
    finetune_segmentation,
    segmentation_probe,
    subset_shapes,
)
from rq_points.midnet import MidNet, MidNetConfig
from rq_points.packed import ShapeDataset, collate_shapes
from rq_points.pretraining import MidNetPretraining
from rq_points.shape_cache import ShapeCache, write_shape_cache
from rq_points.sources import folder_sources, procedural_sources, sweethome3d_sources
from rq_points.transforms import PointAugmentation

from rq_mid_net.schema import MidNetRunConfig

# Package data when installed from a wheel (see pyproject.toml), else the checkout's configs/.
CONFIG_DIR = app_config_dir("rq_mid_net", Path(__file__).resolve().parents[2] / "configs")


# ------------------------------------------------------------------------------ helpers


def cache_root(cfg: DictConfig) -> Path:
    root = cfg.cache_dir or os.environ.get("RQ_CACHE") or str(Path.home() / ".cache" / "rq")
    return Path(root).expanduser() / "points"


def cache_path(cfg: DictConfig, data: DictConfig) -> Path:
    """Where the cache of ``data`` lives: a name derived from everything that shapes it."""
    if data.source == "cache":
        return Path(data.root).expanduser()
    spec = {k: data[k] for k in ("source", "num_points", "shapes_per_class", "num_clusters", "seed")}
    spec["root"] = str(Path(data.root).expanduser().resolve()) if data.root else ""
    digest = hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]
    return cache_root(cfg) / f"{data.source}-{digest}.h5"


def prepare_data(cfg: DictConfig, data: DictConfig) -> ShapeCache:
    """Build the cache of ``data`` unless it exists; return its reader."""
    path = cache_path(cfg, data)
    if not path.is_file() and data.source != "cache" and process_rank() != 0:
        # Under DDP only rank 0 writes the cache (atomically); the others wait for it.
        deadline = time.time() + 6 * 3600
        while not path.is_file():
            if time.time() > deadline:
                raise TimeoutError(f"rank {process_rank()}: waited 6 h for rank 0 to write {path}")
            time.sleep(2)
    if not path.is_file():
        if data.source == "procedural":
            sources, meta = procedural_sources(data.shapes_per_class, data.num_points, data.seed)
        elif data.source == "folder":
            sources, meta = folder_sources(data.root, data.num_points, data.seed)
        elif data.source == "sweethome3d":
            sources, meta = sweethome3d_sources(data.root, data.num_points, data.seed)
        elif data.source == "cache":
            raise FileNotFoundError(f"data.source=cache but {path} does not exist (see data_scripts/points)")
        else:
            raise ValueError(f"data.source must be procedural|folder|sweethome3d|cache, got {data.source!r}")
        t0 = time.time()
        summary = write_shape_cache(path, sources, class_names=meta["class_names"], part_names=meta["part_names"],
                                    num_clusters=data.num_clusters)
        print(f"[prepare] {summary} in {time.time() - t0:.1f} s")
    return ShapeCache(path)


def split_indices(cache: ShapeCache, splits) -> np.ndarray:
    return np.sort(np.concatenate([cache.split_indices(s) for s in splits]))


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


def apply_threads(cfg: DictConfig) -> None:
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)


def pick_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def model_config(cfg: DictConfig) -> MidNetConfig:
    return MidNetConfig(**OmegaConf.to_container(cfg.model, resolve=True))


def load_backbone(cfg: DictConfig, spec: str, seed: int) -> MidNet:
    """``spec``: a checkpoint path, or ``random`` (the initialization pretraining starts from)."""
    if spec == "random":
        torch.manual_seed(seed)
        return MidNet(model_config(cfg))
    path = Path(spec)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained checkpoint {path} not found (run `rq-mid-net pretrain` first)")
    ckpt = load_checkpoint(path)
    net_cfg = ckpt.get("hyper_parameters", {}).get("net")
    net = MidNet(MidNetConfig(**net_cfg) if net_cfg else model_config(cfg))
    state = {k[len("net."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("net.")}
    net.load_state_dict(state)
    return net


def write_results(run_dir: Path, results: dict, markdown: str, rows: list[dict]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "checkpoints").mkdir(exist_ok=True)
    (run_dir / "results.json").write_text(json.dumps(results, indent=2))
    (run_dir / "results.md").write_text(markdown)
    with open(run_dir / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["variant", "task", "ratio", "metric", "value"])
        writer.writeheader()
        writer.writerows(rows)


# ------------------------------------------------------------------------------ commands


def prepare(cfg: DictConfig) -> dict:
    """Build the HDF5 caches of data, classify_data and segment_data."""
    apply_threads(cfg)
    out = {}
    for key in ("data", "classify_data", "segment_data"):
        cache = prepare_data(cfg, cfg[key])
        out[key] = cache.path
        print(f"[prepare] {key}: {cache.path} ({len(cache)} shapes, {cache.num_classes} classes)")
    return out


def pretrain(cfg: DictConfig) -> Path:
    """Pretrain MID-Net (with RQ unless augmentation.rq_bins=0); checkpoints in RUN_DIR."""
    apply_threads(cfg)
    run_dir = Path(cfg.run_dir)
    cache = prepare_data(cfg, cfg.data)
    indices = split_indices(cache, cfg.data.splits)
    dataset = ShapeDataset(cache, indices)
    if len(dataset) < cfg.optim.batch_size:
        raise ValueError(f"{len(dataset)} pretraining shapes < batch size {cfg.optim.batch_size}")
    # A ResumableSampler's order: a run resumed mid-epoch continues the interrupted epoch.
    loader = resumable_loader(dataset, cfg.optim.batch_size, seed=cfg.trainer.seed,
                              num_workers=cfg.optim.num_workers, collate_fn=collate_shapes)
    torch.manual_seed(cfg.trainer.seed)  # the same initial weights as `pretrained=random`
    module = MidNetPretraining(
        model_config(cfg), len(dataset), num_clusters=cache.num_clusters,
        augmentation=PointAugmentation(**OmegaConf.to_container(cfg.augmentation, resolve=True)),
        lr=cfg.optim.lr, momentum=cfg.optim.momentum, weight_decay=cfg.optim.weight_decay,
        lr_milestones=list(cfg.optim.lr_milestones), temperature=cfg.loss.temperature,
        bank_momentum=cfg.loss.bank_momentum, loss_weights=list(cfg.loss.weights), seed=cfg.trainer.seed)
    trainer_cfg = TrainerConfig(**OmegaConf.to_container(cfg.trainer, resolve=True))
    fit(module, run_dir, trainer_cfg, train_dataloaders=loader, config=cfg)
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    print(f"[pretrain] done: {ckpt}")
    return ckpt


def _pretrained_spec(cfg: DictConfig) -> str:
    return cfg.pretrained or str(Path(cfg.run_dir) / "checkpoints" / "last.ckpt")


class _FeatureStore:
    """Features of one backbone, computed once per (cache, split) and shared by the tasks."""

    def __init__(self, cfg: DictConfig, net: MidNet, device: str) -> None:
        self.cfg, self.net, self.device, self._done = cfg, net, device, {}

    def get(self, data: DictConfig, split: str):
        cache = prepare_data(self.cfg, data)
        key = (cache.path, split)
        if key not in self._done:
            keep = self.cfg.segment.points_per_shape if split == "train" else None
            self._done[key] = extract_features(self.net, cache, cache.split_indices(split), keep_points=keep,
                                               device=self.device)
        return cache, self._done[key]


def _classify_results(cfg: DictConfig, store: _FeatureStore) -> dict:
    cache, (xtr, ytr, _) = store.get(cfg.classify_data, "train")
    _, (xva, yva, _) = store.get(cfg.classify_data, "valid")
    _, (xte, yte, _) = store.get(cfg.classify_data, "test")
    out: dict[str, Any] = {"linear": {}, "finetune": {}}
    settings = ProbeSettings(lr=cfg.classify.probe_lr, max_epochs=cfg.classify.probe_epochs)
    tr, te = cache.split_indices("train"), cache.split_indices("test")
    for ratio in cfg.classify.ratios:
        sub = class_ratio_subset(ytr, ratio, seed=0)
        if cfg.classify.linear:
            with cpu_threads(1):
                r = linear_probe((xtr[sub], ytr[sub]), (xva, yva), (xte, yte), seeds=tuple(cfg.classify.seeds),
                                 settings=settings)
            # rq_core reports accuracy as a fraction; the paper's tables use percent.
            out["linear"][str(ratio)] = {k: (100 * v if k.startswith("accuracy") else v)
                                         for k, v in r.items() if not k.endswith("per_seed")}
        if cfg.classify.finetune:
            fresh = copy.deepcopy(store.net)
            out["finetune"][str(ratio)] = finetune_classification(
                fresh, cache, tr[sub], te, epochs=cfg.classify.finetune_epochs, lr=cfg.classify.finetune_lr,
                device=store.device)
    return out


def _segment_results(cfg: DictConfig, store: _FeatureStore) -> dict:
    cache, (_, _, train_feats) = store.get(cfg.segment_data, "train")
    _, (_, _, test_feats) = store.get(cfg.segment_data, "test")
    if not cache.part_names:
        raise ValueError(f"{cache.path} has no part names: segmentation needs part-labelled data")
    ranges = [(a, a + len(p)) for a, p in zip(cache.part_offsets, cache.part_names)]
    out: dict[str, Any] = {}
    tr, te = cache.split_indices("train"), cache.split_indices("test")
    for ratio in cfg.segment.ratios:
        sub = class_ratio_subset(train_feats.class_ids, ratio, seed=0)
        if cfg.segment.finetune:
            out.setdefault("finetune", {})[str(ratio)] = finetune_segmentation(
                copy.deepcopy(store.net), cache, tr[sub], te, ranges, epochs=cfg.segment.finetune_epochs,
                lr=cfg.segment.finetune_lr, hidden=cfg.segment.hidden, device=store.device)
        with cpu_threads(1):
            out[str(ratio)] = segmentation_probe(subset_shapes(train_feats, sub), test_feats, ranges,
                                                 hidden=cfg.segment.hidden, epochs=cfg.segment.epochs,
                                                 lr=cfg.segment.lr, batch_size=cfg.segment.batch_size,
                                                 seeds=tuple(cfg.segment.seeds))
    return out


def _rows(variant: str, cls: dict | None, seg: dict | None) -> list[dict]:
    rows = []
    for mode, per_ratio in (cls or {}).items():
        for ratio, r in per_ratio.items():
            value = r.get("accuracy_mean", r.get("accuracy"))
            rows.append({"variant": variant, "task": f"classify_{mode}", "ratio": ratio, "metric": "accuracy",
                         "value": value})
    for ratio, r in (seg or {}).get("finetune", {}).items():
        for metric in ("class_miou", "instance_miou"):
            rows.append({"variant": variant, "task": "segment_finetune", "ratio": ratio, "metric": metric,
                         "value": r[metric]})
    for ratio, r in (seg or {}).items():
        if ratio == "finetune":
            continue
        for metric in ("class_miou", "instance_miou"):
            rows.append({"variant": variant, "task": "segment", "ratio": ratio, "metric": metric,
                         "value": r[f"{metric}_mean"]})
    return rows


def _markdown(results: dict[str, dict]) -> str:
    lines = []
    cls_ratios = sorted({r for v in results.values() for r in (v.get("classify") or {}).get("linear", {})}, key=float)
    seg_ratios = sorted({r for v in results.values() for r in (v.get("segment") or {}) if r != "finetune"},
                        key=float)
    head = ["backbone"] + [f"cls lin {float(r):.0%}" for r in cls_ratios]
    head += [f"seg {float(r):.0%} C.mIoU / I.mIoU" for r in seg_ratios]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for name, v in results.items():
        row = [name]
        for r in cls_ratios:
            x = (v.get("classify") or {}).get("linear", {}).get(r)
            row.append(f"{x['accuracy_mean']:.1f} ± {x['accuracy_std']:.1f}" if x else "–")
        for r in seg_ratios:
            x = (v.get("segment") or {}).get(r)
            row.append(f"{x['class_miou_mean']:.1f} / {x['instance_miou_mean']:.1f}" if x else "–")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def classify(cfg: DictConfig) -> dict:
    """Linear probe (and optional finetune) on the frozen global feature at the data ratios."""
    apply_threads(cfg)
    spec = _pretrained_spec(cfg)
    net = load_backbone(cfg, spec, cfg.trainer.seed)
    res = {"pretrained": spec, "classify": _classify_results(cfg, _FeatureStore(cfg, net, pick_device(cfg.device)))}
    save_config(cfg, cfg.run_dir)
    write_results(Path(cfg.run_dir), res, _markdown({Path(spec).name: res}), _rows("model", res["classify"], None))
    print(_markdown({Path(spec).name: res}))
    return res


def segment(cfg: DictConfig) -> dict:
    """2-FC head on frozen point features; C.mIoU and I.mIoU at the data ratios."""
    apply_threads(cfg)
    spec = _pretrained_spec(cfg)
    net = load_backbone(cfg, spec, cfg.trainer.seed)
    res = {"pretrained": spec, "segment": _segment_results(cfg, _FeatureStore(cfg, net, pick_device(cfg.device)))}
    save_config(cfg, cfg.run_dir)
    write_results(Path(cfg.run_dir), res, _markdown({Path(spec).name: res}), _rows("model", None, res["segment"]))
    print(_markdown({Path(spec).name: res}))
    return res


DEMO_VARIANTS = {"random": None, "midfc": 0, "rq": None}


def _fingerprint(cfg: DictConfig, keys: tuple[str, ...]) -> str:
    """A hash of the config sections that determine a stage's result (for reuse checks)."""
    text = OmegaConf.to_yaml(OmegaConf.masked_copy(cfg, list(keys)), resolve=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


PRETRAIN_KEYS = ("data", "model", "augmentation", "optim", "loss", "trainer")
EVAL_KEYS = ("classify_data", "segment_data", "classify", "segment", "model")


def demo(cfg: DictConfig) -> dict:
    """Pretrain with and without RQ on the procedural shapes, probe both and a random init."""
    apply_threads(cfg)
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir)
    (run_dir / "checkpoints").mkdir(exist_ok=True)
    t_start = time.time()
    prepare_data(cfg, cfg.data)
    device = pick_device(cfg.device)
    results, timings = {}, {}
    for variant in cfg.demo_variants:
        if variant not in DEMO_VARIANTS:
            raise ValueError(f"demo_variants: unknown {variant!r}; choose from {sorted(DEMO_VARIANTS)}")
        spec = "random"
        if variant != "random":
            sub = copy.deepcopy(cfg)
            sub.run_dir = str(run_dir / f"pretrain_{variant}")
            if variant == "midfc":
                sub.augmentation.rq_bins = 0
            done = Path(sub.run_dir) / "done.json"
            fingerprint = _fingerprint(sub, PRETRAIN_KEYS)
            if done.is_file() and json.loads(done.read_text()).get("config") != fingerprint:
                raise ValueError(f"{sub.run_dir} was pretrained with another config; delete it or pick another run_dir")
            if not done.is_file():
                t0 = time.time()
                pretrain(sub)
                done.write_text(json.dumps({"seconds": time.time() - t0, "config": fingerprint}))
            timings[f"pretrain_{variant}_s"] = json.loads(done.read_text())["seconds"]
            spec = str(Path(sub.run_dir) / "checkpoints" / "last.ckpt")
        cached = run_dir / f"eval_{variant}.json"
        fingerprint = _fingerprint(cfg, EVAL_KEYS) + ":" + spec
        if cached.is_file() and json.loads(cached.read_text()).get("config") == fingerprint:
            results[variant] = json.loads(cached.read_text())
            continue
        t0 = time.time()
        net = load_backbone(cfg, spec, cfg.trainer.seed)
        store = _FeatureStore(cfg, net, device)
        res = {"pretrained": spec, "classify": _classify_results(cfg, store), "segment": _segment_results(cfg, store)}
        res["eval_seconds"] = time.time() - t0
        res["config"] = fingerprint
        cached.write_text(json.dumps(res, indent=2))
        results[variant] = res
    rows = [row for name, r in results.items() for row in _rows(name, r["classify"], r["segment"])]
    markdown = "# MID-Net demo (procedural shapes)\n\n" + _markdown(results)
    markdown += f"\nclassification: linear probe on the frozen global feature (test accuracy %, mean ± std over seeds {list(cfg.classify.seeds)});\n"
    markdown += "segmentation: 2-FC head on frozen point features (C.mIoU / I.mIoU %).\n"
    summary = {"results": results, "timings": timings, "total_seconds": time.time() - t_start}
    write_results(run_dir, summary, markdown, rows)
    print(markdown)
    return summary


COMMANDS = {"prepare": prepare, "pretrain": pretrain, "classify": classify, "segment": segment, "demo": demo}


def main(argv: list[str] | None = None) -> Any:
    schemas = {name: MidNetRunConfig for name in COMMANDS}
    defaults = {name: CONFIG_DIR / "shapenet_paper.yaml" for name in COMMANDS}
    defaults["demo"] = CONFIG_DIR / "demo.yaml"
    cli_main(COMMANDS, schemas, defaults, argv=argv, prog="rq-mid-net", description=__doc__)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
