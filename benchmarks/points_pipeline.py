"""Points pipeline benchmark: what randomized quantization does to octrees and training steps.

The RQ paper (section 5.2) notes that quantized points sparsify the octree and speed up
training. Measured here, in one process, on the procedural shapes (rq_points.data.procedural):

1. octree nodes per shape (non-empty leaves at the finest depth, and all nodes) with the
   MID-Net augmentations, with RQ (30 bins) vs without -- ratio rq / no-rq;
2. one MID-Net training step (augment + octree + forward + backward + SGD) with vs without
   RQ -- ratio rq / no-rq, interleaved repeats, median;
3. per-(shape, axis) min/max of a packed batch -- RQ's first pass (rq_core.segment_min_max)
   and rq_points' normalization -- through native ``scatter_reduce`` (per channel, and over
   an expanded (N, 3) index), ``torch.segment_reduce``, and torch-scatter's ``scatter_min/max``
   and ``segment_min/max_csr`` when torch-scatter is importable (it says so otherwise). All
   must agree exactly with rq_core's result.

    .venv/bin/python benchmarks/points_pipeline.py [--device cuda] [--size paper]
    .venv/bin/python benchmarks/points_pipeline.py --scatter-only --shapes 16 --points 1024

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
from rq_points.augmentations import PointAugmentation
from rq_points.data.packed import collate_shapes
from rq_points.data.procedural import generate_shapes
from rq_points.encoder import MidNet, MidNetConfig
from rq_points.losses import MidNetLoss
from rq_points.octree_batch import build_octree_batch, leaf_majority_label
from torch import Tensor

SIZES = {
    "demo": dict(
        channels=16, global_channels=64, shape_dim=32, point_dim=32, point_hidden=32, resblock_num=1
    ),
    "paper": {},  # MidNetConfig defaults: the paper's network
}


def batch_of(num_shapes: int, num_points: int, seed: int = 0):
    items = []
    for i, s in enumerate(generate_shapes(-(-num_shapes // 6), num_points, seed)[:num_shapes]):
        items.append(
            {
                "points": s.shape.points,
                "normals": s.shape.normals,
                "labels": s.shape.labels,
                "cluster_ids": np.arange(num_points) % 100,
                "class_id": s.class_id,
                "index": i,
            }
        )
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


def step_times(
    batch, cfg: MidNetConfig, rq_bins_list: list[int], repeats: int, device: str
) -> tuple[dict[int, float], dict[int, float]]:
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
            b = PointAugmentation(rq_bins=bins)(
                batch, torch.Generator(device=device).manual_seed(r)
            )
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


def timeit(fn, repeats: int, device: str) -> tuple[float, float]:
    """Median wall time and median process CPU time of ``fn`` over ``repeats`` calls (after
    one warm-up call)."""
    fn()
    sync(device)
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        sync(device)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def segment_min_max_contenders(batch) -> dict[str, object]:
    """Per-(shape, axis) min and max of a packed batch's points, every way we could compute
    it. Each returns ``(min, max)`` of shape (B, 3); ``scatter_table`` checks they agree."""
    x, ids, B = batch.points, batch.batch_ids, batch.batch_size
    lengths = torch.bincount(ids, minlength=B)
    big = torch.finfo(x.dtype).max

    def per_channel(reduce: str, init: float) -> Tensor:
        full = torch.full((B,), init, dtype=x.dtype, device=x.device)
        return torch.stack(
            [full.scatter_reduce(0, ids, x[:, c], reduce) for c in range(x.shape[1])], 1
        )

    def expanded(reduce: str, init: float) -> Tensor:
        full = torch.full((B, x.shape[1]), init, dtype=x.dtype, device=x.device)
        return full.scatter_reduce(0, ids.unsqueeze(1).expand_as(x), x, reduce)

    out: dict[str, object] = {
        # RQ's first pass (rq_core.randomized_quantize with segment_ids), which rq_points'
        # normalize_unit_sphere also calls: whichever path rq_core picks for this input.
        "rq_core.segment_min_max": lambda: segment_min_max(x, ids, B)[:2],
        # rq_core's torch path: one (N,) scatter_reduce per channel.
        "native scatter_reduce per channel": lambda: (
            per_channel("amin", big),
            per_channel("amax", -big),
        ),
        # One scatter_reduce over an expanded (N, 3) int64 index (rq_points until 2026-11-25).
        "native scatter_reduce, (N, 3) index": lambda: (
            expanded("amin", big),
            expanded("amax", -big),
        ),
        # Packed batches are sorted by shape, so a CSR segment reduction applies too.
        "native torch.segment_reduce (lengths)": lambda: (
            torch.segment_reduce(x, "min", lengths=lengths),
            torch.segment_reduce(x, "max", lengths=lengths),
        ),
    }
    try:
        import torch_scatter
    except ImportError:
        return out
    ptr = torch.cat([lengths.new_zeros(1), lengths.cumsum(0)])
    out["torch-scatter scatter_min/max"] = lambda: (
        torch_scatter.scatter_min(x, ids, dim=0, dim_size=B)[0],
        torch_scatter.scatter_max(x, ids, dim=0, dim_size=B)[0],
    )
    out["torch-scatter segment_min/max_csr"] = lambda: (
        torch_scatter.segment_min_csr(x, ptr)[0],
        torch_scatter.segment_max_csr(x, ptr)[0],
    )
    return out


def scatter_table(batch, device: str, repeats: int) -> dict[str, tuple[float, float]]:
    n = batch.points.shape[0]
    print(
        f"\n## segment min/max of a packed batch ({batch.batch_size} shapes x "
        f"{n // batch.batch_size} points "
        f"x 3, median of {repeats})"
    )
    contenders = segment_min_max_contenders(batch)
    ref = contenders["rq_core.segment_min_max"]()
    times = {}
    print("| implementation | wall us | CPU us | wall ratio rq_core / this |")
    print("|---|---|---|---|")
    for name, fn in contenders.items():
        mn, mx = fn()
        if not (torch.equal(mn, ref[0]) and torch.equal(mx, ref[1])):
            raise AssertionError(f"{name} disagrees with rq_core.segment_min_max")
        times[name] = timeit(fn, repeats, device)
        w, c = times[name]
        print(
            f"| {name} | {w * 1e6:.0f} | {c * 1e6:.0f} | "
            f"{times['rq_core.segment_min_max'][0] / w:.2f} |"
        )
    if not any(k.startswith("torch-scatter") for k in times):
        print(
            "torch-scatter is not importable here, so it is not compared "
            "(pip install --no-build-isolation torch-scatter builds from source, ~5 min)"
        )
    return times


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--size", choices=sorted(SIZES), default="demo")
    p.add_argument("--depth", type=int, default=6)
    p.add_argument("--shapes", type=int, default=32)
    p.add_argument("--points", type=int, default=10000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--scatter-only", action="store_true", help="only the segment min/max comparison"
    )
    p.add_argument("--scatter-repeats", type=int, default=50)
    args = p.parse_args(argv)
    dev = args.device
    print(
        f"# points pipeline benchmark: device={dev}, torch {torch.__version__}, "
        f"threads {torch.get_num_threads()}"
    )
    batch = batch_of(args.shapes, args.points).to(dev)

    if not args.scatter_only:
        print(
            f"\n## octree nodes per shape (depth {args.depth}, {args.points} points/shape, "
            f"{args.shapes} shapes, MID-Net augmentations, {args.repeats} draws)"
        )
        base = octree_nodes(batch, args.depth, 0, args.repeats, dev)
        print("| RQ bins | leaves/shape | all nodes/shape | leaves ratio rq/no-rq | nodes ratio |")
        print("|---|---|---|---|---|")
        print(f"| none | {base[0]:.0f} | {base[1]:.0f} | 1.00 | 1.00 |")
        for bins in (30, 15, 8):
            q = octree_nodes(batch, args.depth, bins, args.repeats, dev)
            print(
                f"| {bins} | {q[0]:.0f} | {q[1]:.0f} | "
                f"{q[0] / base[0]:.2f} | {q[1] / base[1]:.2f} |"
            )

        cfg = MidNetConfig(depth=args.depth, **SIZES[args.size])
        print(
            f"\n## training step ({args.size} network, batch {args.shapes}, "
            f"median of {args.repeats})"
        )
        t, c = step_times(batch, cfg, [0, 30], args.repeats, dev)
        print(
            f"wall: no RQ {t[0] * 1e3:.0f} ms, RQ-30 {t[30] * 1e3:.0f} ms -> "
            f"step ratio rq/no-rq {t[30] / t[0]:.2f}"
        )
        if not dev.startswith("cuda"):
            print(
                f"CPU time: no RQ {c[0] * 1e3:.0f} ms, RQ-30 {c[30] * 1e3:.0f} ms -> "
                f"ratio rq/no-rq {c[30] / c[0]:.2f}"
            )

    scatter_table(batch, dev, args.scatter_repeats)
    peak = (
        torch.cuda.max_memory_allocated() / 2**20
        if dev.startswith("cuda")
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    print(
        f"\npeak memory: {peak:.0f} MiB "
        f"({'CUDA allocated' if dev.startswith('cuda') else 'process RSS'})"
    )


if __name__ == "__main__":
    main()
