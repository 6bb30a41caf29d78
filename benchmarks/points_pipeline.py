"""Points pipeline benchmark: what randomized quantization does to octrees and training steps.

The RQ paper (section 5.2) notes that quantized points sparsify the octree and speed up
training. Measured here, in one process, on the procedural shapes (rq_points.procedural):

1. octree nodes per shape (non-empty leaves at the finest depth, and all nodes) with the
   MID-Net augmentations, with RQ (30 bins) vs without -- ratio rq / no-rq;
2. one MID-Net training step (augment + octree + forward + backward + SGD) with vs without
   RQ -- ratio rq / no-rq, interleaved repeats, median;
3. per-segment min/max of a packed batch (RQ's first pass) through torch-scatter vs native
   ``scatter_reduce`` -- only when torch-scatter is importable, and it says so otherwise.

    .venv/bin/python benchmarks/points_pipeline.py [--device cuda] [--size paper]

Absolute times are only meaningful on a GPU; on CPU read the ratios.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import numpy as np
import torch
from rq_core.quantize import segment_min_max
from rq_points.losses import MidNetLoss
from rq_points.midnet import MidNet, MidNetConfig
from rq_points.octree_batch import build_octree_batch, leaf_majority_label
from rq_points.packed import collate_shapes
from rq_points.procedural import generate_shapes
from rq_points.transforms import PointAugmentation

SIZES = {
    "demo": dict(channels=16, global_channels=64, shape_dim=32, point_dim=32, point_hidden=32, resblock_num=1),
    "paper": {},  # MidNetConfig defaults: the paper's network
}


def batch_of(num_shapes: int, num_points: int, seed: int = 0):
    items = []
    for i, s in enumerate(generate_shapes(-(-num_shapes // 6), num_points, seed)[:num_shapes]):
        items.append({"points": s.shape.points, "normals": s.shape.normals, "labels": s.shape.labels,
                      "cluster_ids": np.arange(num_points) % 100, "class_id": s.class_id, "index": i})
    return collate_shapes(items)


def octree_nodes(batch, depth: int, rq_bins: int, repeats: int, device: str) -> tuple[float, float]:
    leaves, nodes = [], []
    aug = PointAugmentation(rq_bins=rq_bins)
    for r in range(repeats):
        b = aug(batch, torch.Generator(device=device).manual_seed(r))
        ob = build_octree_batch(b.points, b.normals, b.batch_ids, b.batch_size, depth=depth)
        leaves.append(ob.num_leaves / b.batch_size)
        nodes.append(float(ob.octree.nnum.sum()) / b.batch_size)
    return float(np.mean(leaves)), float(np.mean(nodes))


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def step_times(batch, cfg: MidNetConfig, rq_bins_list: list[int], repeats: int,
               device: str) -> tuple[dict[int, float], dict[int, float]]:
    """Median wall time and median process CPU time (all threads) of a training step; on a
    shared CPU machine the CPU time is the steadier of the two."""
    torch.manual_seed(0)
    net = MidNet(cfg).to(device)
    loss = MidNetLoss(batch.batch_size, 100, cfg.shape_dim, cfg.point_dim).to(device)
    opt = torch.optim.SGD(net.parameters(), lr=0.03, momentum=0.9, weight_decay=5e-4)
    times: dict[int, list[float]] = {b: [] for b in rq_bins_list}
    cpu: dict[int, list[float]] = {b: [] for b in rq_bins_list}
    for r in range(repeats + 1):  # the first round warms up
        for bins in rq_bins_list:  # interleaved, so load changes hit both alike
            sync(device)
            t0, c0 = time.perf_counter(), time.process_time()
            b = PointAugmentation(rq_bins=bins)(batch, torch.Generator(device=device).manual_seed(r))
            ob = build_octree_batch(b.points, b.normals, b.batch_ids, b.batch_size, depth=cfg.depth)
            out = net(ob.octree)
            cl = leaf_majority_label(ob.point_leaf, b.cluster_ids, ob.num_leaves)
            lb = ob.octree.batch_id(cfg.depth, nempty=True).long()
            total = loss(out.shape_embedding, b.shape_ids, out.leaf_embedding, cl, lb).total
            opt.zero_grad()
            total.backward()
            opt.step()
            sync(device)
            if r > 0:
                times[bins].append(time.perf_counter() - t0)
                cpu[bins].append(time.process_time() - c0)
    med = statistics.median
    return {b: med(v) for b, v in times.items()}, {b: med(v) for b, v in cpu.items()}


def timeit(fn, repeats: int, device: str) -> float:
    fn()
    sync(device)
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(device)
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--size", choices=sorted(SIZES), default="demo")
    p.add_argument("--depth", type=int, default=6)
    p.add_argument("--shapes", type=int, default=32)
    p.add_argument("--points", type=int, default=10000)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    dev = args.device
    print(f"# points pipeline benchmark: device={dev}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    batch = batch_of(args.shapes, args.points).to(dev)

    print(f"\n## octree nodes per shape (depth {args.depth}, {args.points} points/shape, "
          f"{args.shapes} shapes, MID-Net augmentations, {args.repeats} draws)")
    base = octree_nodes(batch, args.depth, 0, args.repeats, dev)
    print("| RQ bins | leaves/shape | all nodes/shape | leaves ratio rq/no-rq | nodes ratio |")
    print("|---|---|---|---|---|")
    print(f"| none | {base[0]:.0f} | {base[1]:.0f} | 1.00 | 1.00 |")
    for bins in (30, 15, 8):
        q = octree_nodes(batch, args.depth, bins, args.repeats, dev)
        print(f"| {bins} | {q[0]:.0f} | {q[1]:.0f} | {q[0] / base[0]:.2f} | {q[1] / base[1]:.2f} |")

    cfg = MidNetConfig(depth=args.depth, **SIZES[args.size])
    print(f"\n## training step ({args.size} network, batch {args.shapes}, median of {args.repeats})")
    t, c = step_times(batch, cfg, [0, 30], args.repeats, dev)
    print(f"wall: no RQ {t[0] * 1e3:.0f} ms, RQ-30 {t[30] * 1e3:.0f} ms -> step ratio rq/no-rq {t[30] / t[0]:.2f}")
    if not dev.startswith("cuda"):
        print(f"CPU time: no RQ {c[0] * 1e3:.0f} ms, RQ-30 {c[30] * 1e3:.0f} ms -> ratio rq/no-rq {c[30] / c[0]:.2f}")

    print("\n## segment min/max of a packed batch (RQ's first pass)")
    x = batch.points
    ids = batch.batch_ids
    native = timeit(lambda: segment_min_max(x, ids, batch.batch_size), 20, dev)
    try:
        import torch_scatter
    except ImportError:
        print(f"native scatter_reduce {native * 1e6:.0f} us; torch-scatter is not importable here, so no "
              "comparison (pip install torch-scatter builds from source, ~5 min)")
    else:
        def with_scatter():
            torch_scatter.scatter_min(x, ids.long(), dim=0, dim_size=batch.batch_size)
            torch_scatter.scatter_max(x, ids.long(), dim=0, dim_size=batch.batch_size)
        other = timeit(with_scatter, 20, dev)
        print(f"native {native * 1e6:.0f} us, torch-scatter {other * 1e6:.0f} us -> ratio native/torch-scatter "
              f"{native / other:.2f}")
    peak = torch.cuda.max_memory_allocated() / 2**20 if dev.startswith("cuda") else \
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak memory: {peak:.0f} MiB ({'CUDA allocated' if dev.startswith('cuda') else 'process RSS'})")


if __name__ == "__main__":
    main()
