"""Everything the GPU acceptance run takes from inside the apps' packages, in one place.

The run drives the apps through their command lines (``rq-byol-a``, ``rq-mid-net``,
``rq-dabs``: console-script entry points) and rq-core's public training API. Timing a paper
model on synthetic batches and an input pipeline on its own needs the LightningModules,
datasets and loaders that the commands build internally; those module names are imported
here and nowhere else, so a rename inside a modality package is fixed in this file alone
(and ``tests/gpu_acceptance/test_dry_run.py`` fails until it is).

Each app gives the run a :class:`Workload` (its pretraining module for a config, one
synthetic batch of the config's batch size, and the step count of the paper's full schedule)
and an input pipeline over a small on-disk cache built from the app's embedded demo data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader, RandomSampler

# Sizes of the paper's pretraining sets, for projecting a full schedule from a step time.
# BYOL-A (Niizumi et al., TASLP 2023, arXiv 2204.07402, pretraining details): "The number of
# pretraining samples collected from balanced train segments and unbalanced train segments
# data splits in the AudioSet dataset was 1,963,807 in total"; one epoch is one crop of each.
AUDIOSET_CLIPS = 1_963_807
# MID-Net's ShapeNetCore set: apps/mid-net/configs/shapenet_paper.yaml, data (inst_num: 57449).
SHAPENET_SHAPES = 57_449
# Points per ShapeNetCore shape in the cache data_scripts/points writes (--num-points default).
SHAPENET_POINTS = 10_000


@dataclass
class Workload:
    """One pretraining step's worth of work for the paper model of a config.

    ``batch`` is what the config's DataLoader would yield (on CPU); ``full_steps`` the optimizer
    steps of the paper's whole schedule and ``schedule`` how they were counted.
    """

    module: torch.nn.Module
    batch: Any
    batch_size: int
    full_steps: int
    schedule: str


@dataclass
class Pipeline:
    """A configured DataLoader over a small on-disk cache, and what one sample is."""

    loader: DataLoader
    batch_size: int
    workers: int
    source: str


def _endless(dataset, batch_size: int, num_batches: int) -> RandomSampler:
    # Drawing with replacement serves any number of batches from a small cache.
    return RandomSampler(dataset, replacement=True, num_samples=batch_size * num_batches)


# ----------------------------------------------------------------------------- BYOL-A (audio)


def byol_a_workload(cfg: DictConfig, *, seed: int = 0) -> Workload:
    """BYOL-A (AudioNTT2020 + BYOL heads, log-mel and augmentations in the step) for ``cfg``;
    a batch of random waveforms of ``data.unit_sec`` seconds."""
    from rq_byol_a.commands import build_module, resolve_chain

    torch.manual_seed(seed)
    module = build_module(cfg, resolve_chain(cfg).augmentations)  # method= preset or explicit
    batch_size = int(cfg.data.batch_size)
    samples = int(round(cfg.data.unit_sec * cfg.audio.sample_rate))
    g = torch.Generator().manual_seed(seed)
    batch = (0.1 * torch.randn(batch_size, samples, generator=g)).clamp(-1, 1)
    epochs = int(cfg.trainer.max_epochs)
    per_epoch = AUDIOSET_CLIPS // batch_size  # the pretraining loader drops the last batch
    return Workload(
        module,
        batch,
        batch_size,
        epochs * per_epoch,
        f"{epochs} epochs x {per_epoch:,} steps "
        f"({AUDIOSET_CLIPS:,} AudioSet clips / batch {batch_size})",
    )


def byol_a_pipeline(
    cfg: DictConfig, corpus_settings: dict, cache_dir: Path, work_dir: Path, num_batches: int
) -> Pipeline:
    """The pretraining loader of ``cfg`` (0.95 s random crops from an HDF5 cache, the config's
    batch size and workers) over a cache of the byol-a demo corpus."""
    from rq_audio.data.corpus import CorpusSettings, build_offline_corpus
    from rq_audio.data.hdf5_cache import AudioClipDataset, prepare_audio_cache

    corpus = build_offline_corpus(
        CorpusSettings(**corpus_settings), cache_dir=cache_dir, progress=False
    )
    cache = work_dir / "byol-a-pretrain.h5"
    if not cache.is_file():
        prepare_audio_cache(
            corpus.root,
            cache,
            metadata=corpus.pretrain_metadata,
            sample_rate=cfg.audio.sample_rate,
            progress=False,
        )
    samples = int(round(cfg.data.unit_sec * cfg.audio.sample_rate))
    dataset = AudioClipDataset(cache, samples, random_crop=True)
    batch_size, workers = int(cfg.data.batch_size), int(cfg.data.num_workers)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=_endless(dataset, batch_size, num_batches),
        drop_last=True,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=torch.cuda.is_available(),
    )
    return Pipeline(
        loader,
        batch_size,
        workers,
        f"HDF5 cache of the demo corpus ({len(dataset)} clips), {samples}-sample random crops",
    )


# ---------------------------------------------------------------------------- MID-Net (points)


def _shape_items(num_shapes: int, num_points: int, seed: int) -> list[dict]:
    from rq_points.data.procedural import CLASSES, generate_shapes

    shapes = generate_shapes(math.ceil(num_shapes / len(CLASSES)), num_points, seed)[:num_shapes]
    return [
        {
            "points": s.shape.points,
            "normals": s.shape.normals,
            "labels": s.shape.labels,
            "cluster_ids": np.arange(num_points) % 100,
            "class_id": s.class_id,
            "index": i,
        }
        for i, s in enumerate(shapes)
    ]


def mid_net_workload(
    cfg: DictConfig,
    *,
    num_points: int = SHAPENET_POINTS,
    bank_shapes: int = SHAPENET_SHAPES,
    seed: int = 0,
) -> Workload:
    """MID-Net pretraining (augment + RQ on xyz, octree, network, MID losses, all in the step)
    for ``cfg``; a packed batch of procedural shapes of ``num_points`` points each. The memory
    banks hold ``bank_shapes`` shapes (x ``data.num_clusters`` point prototypes each: 1.5 GB
    for ShapeNetCore at the paper's sizes, as the reference's)."""
    from rq_mid_net.commands import method_augmentation
    from rq_points import MidNetConfig, collate_shapes
    from rq_points.learner import MidNetPretraining

    batch_size = int(cfg.optim.batch_size)
    torch.manual_seed(seed)
    module = MidNetPretraining(
        MidNetConfig(**OmegaConf.to_container(cfg.model, resolve=True)),
        bank_shapes,
        num_clusters=cfg.data.num_clusters,
        augmentation=method_augmentation(cfg),  # the chain of cfg.method (rq | midfc)
        lr=cfg.optim.lr,
        momentum=cfg.optim.momentum,
        weight_decay=cfg.optim.weight_decay,
        lr_milestones=list(cfg.optim.lr_milestones),
        temperature=cfg.loss.temperature,
        bank_momentum=cfg.loss.bank_momentum,
        loss_weights=list(cfg.loss.weights),
        seed=seed,
    )
    batch = collate_shapes(_shape_items(batch_size, num_points, seed))
    epochs = int(cfg.trainer.max_epochs)
    per_epoch = SHAPENET_SHAPES // batch_size  # drop_last, as rq-mid-net pretrain
    return Workload(
        module,
        batch,
        batch_size,
        epochs * per_epoch,
        f"{epochs} epochs x {per_epoch:,} steps ({SHAPENET_SHAPES:,} ShapeNetCore shapes / batch "
        f"{batch_size}), {num_points:,} points a shape",
    )


def mid_net_pipeline(
    cfg: DictConfig,
    work_dir: Path,
    num_batches: int,
    *,
    num_points: int = SHAPENET_POINTS,
    shapes_per_class: int = 6,
) -> Pipeline:
    """The pretraining loader of ``cfg`` (shapes read from an HDF5 cache and packed; the
    augmentations run in the step) over a cache of the procedural demo shapes."""
    from rq_points import ShapeCache, ShapeDataset, collate_shapes, write_shape_cache
    from rq_points.data.sources import procedural_sources

    cache = work_dir / f"mid-net-shapes-{num_points}.h5"
    if not cache.is_file():
        sources, meta = procedural_sources(shapes_per_class, num_points)
        write_shape_cache(
            cache,
            sources,
            class_names=meta["class_names"],
            part_names=meta["part_names"],
            num_clusters=cfg.data.num_clusters,
            progress=False,
        )
    dataset = ShapeDataset(ShapeCache(cache))
    batch_size, workers = int(cfg.optim.batch_size), int(cfg.optim.num_workers)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=_endless(dataset, batch_size, num_batches),
        drop_last=True,
        collate_fn=collate_shapes,
        num_workers=workers,
        persistent_workers=workers > 0,
    )
    return Pipeline(
        loader,
        batch_size,
        workers,
        f"HDF5 cache of {len(dataset)} procedural demo shapes, {num_points:,} points a shape",
    )


# ----------------------------------------------------------------------- DABS (token embeddings)


def dabs_workload(cfg: DictConfig, *, seed: int = 0) -> Workload:
    """The DABS transformer with ``cfg.algorithm`` (RQ-SimCLR, e-Mix, ...) on ``cfg.domain``'s
    input specs; a batch of random inputs in DABS's ``(index, *inputs, label)`` layout."""
    from rq_dabs.algorithms import build_algorithm
    from rq_dabs.data.catalog import DOMAINS
    from rq_dabs.encoder import DomainAgnosticTransformer, TransformerConfig
    from rq_dabs.learner import DABSPretraining, OptimizerConfig

    specs = DOMAINS[cfg.domain].dataset_class.spec()
    torch.manual_seed(seed)
    model = DomainAgnosticTransformer(specs, TransformerConfig(**OmegaConf.to_container(cfg.model)))
    options = (
        OmegaConf.to_container(cfg[cfg.algorithm])
        if cfg.algorithm in ("rq", "emix", "shed")
        else {}
    )
    module = DABSPretraining(
        model,
        build_algorithm(cfg.algorithm, dim=cfg.model.dim, **options),
        OptimizerConfig(cfg.optim.lr, cfg.optim.weight_decay),
    )
    batch_size = int(cfg.batch_size)
    g = torch.Generator().manual_seed(seed)
    inputs = [_random_input(spec, batch_size, g) for spec in specs]
    batch = [torch.arange(batch_size), *inputs, torch.zeros(batch_size, dtype=torch.int64)]
    steps = int(cfg.trainer.max_steps)
    return Workload(module, batch, batch_size, steps, f"{steps:,} steps (trainer.max_steps)")


def _random_input(spec, batch_size: int, g: torch.Generator) -> torch.Tensor:
    if spec.input_type == "tokens":
        return torch.randint(0, spec.vocab_size, (batch_size, spec.seq_len), generator=g)
    if spec.input_type == "1d":
        return torch.randn(batch_size, spec.seq_len, spec.in_channels, generator=g)
    return torch.rand(batch_size, spec.in_channels, *spec.input_size, generator=g)


def dabs_pipeline(
    cfg: DictConfig, cache_dir: Path, num_batches: int, domain: str = "digits_images"
) -> Pipeline:
    """The pretraining loader of ``cfg`` (batch size, workers) over an embedded demo domain's
    ``.npz`` (RQ / e-Mix run in the step)."""
    from rq_dabs.data.catalog import open_domain

    dataset = open_domain(domain, "train", cache_dir / "dabs")
    batch_size, workers = int(cfg.batch_size), int(cfg.num_workers)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=_endless(dataset, batch_size, num_batches),
        drop_last=True,
        num_workers=workers,
        persistent_workers=workers > 0,
    )
    shape = tuple(dataset[0][1].shape)
    return Pipeline(
        loader, batch_size, workers, f"{domain}.npz ({len(dataset)} samples of {shape})"
    )
