"""A picture like Figure 2 of the paper: one example per modality, original + augmented views.

    python scripts/rq_demo/figure.py --out rq_figure.png [--views 3] [--seed 0]

Rows: an RGB image (8 bins per channel), a log-mel spectrogram (5 bins, one quantizer per
spectrogram), a point cloud (30 bins on each of x, y, z). Columns: the original and
``--views`` randomized quantizations. Nothing is downloaded: the photograph ships inside
matplotlib (``sample_data/grace_hopper.jpg``), the sound and the shape are computed here.
The main job's first stage; it lives with the main job, not in rq-core, because it holds a
sample of every modality (a sound, a shape): rq-core stays modality-free.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
from rq_core.quantize import randomized_quantize

# Bins per modality as the paper's figure and experiments use them (Wu et al., ICCV 2023,
# Sec. 5).
IMAGE_BINS = 8
AUDIO_BINS = 5
POINT_BINS = 30


def sample_image(size: int = 224) -> torch.Tensor:
    """The photograph shipped with matplotlib, centre-cropped and resized: (1, 3, size, size)
    in [0, 1]."""
    import matplotlib.cbook as cbook
    import matplotlib.image as mpimg

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        img = mpimg.imread(f, format="jpg")
    x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)
    side = min(x.shape[1:])
    top, left = (x.shape[1] - side) // 2, (x.shape[2] - side) // 2
    x = x[:, top : top + side, left : left + side].unsqueeze(0)
    return torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True)


def sample_log_mel(seconds: float = 2.0, sr: int = 16000) -> torch.Tensor:
    """A computed sound (a gliding harmonic tone over noise bursts) as a BYOL-A style log-mel:
    n_fft 1024, hop 160, 64 mels in 60-7800 Hz, log(x + eps). Returns (1, 1, 64, T)."""
    g = torch.Generator().manual_seed(0)
    t = torch.arange(int(seconds * sr)) / sr
    f0 = 220.0 * 2 ** (2 * t / seconds)  # two octaves up
    phase = 2 * math.pi * torch.cumsum(f0, 0) / sr
    tone = sum(torch.sin(k * phase) / k for k in range(1, 6)) * (
        0.5 + 0.5 * torch.sin(2 * math.pi * 3 * t)
    )
    bursts = torch.randn(t.shape, generator=g) * ((t * 4) % 1 < 0.1).float() * 0.5
    wave = tone + bursts
    spec = torch.stft(
        wave, 1024, hop_length=160, window=torch.hann_window(1024), return_complex=True
    )
    from torchaudio.functional import melscale_fbanks  # the main job installs rq-audio

    filterbank = melscale_fbanks(1024 // 2 + 1, 60.0, 7800.0, 64, sr)  # (freqs, mels), HTK
    mel = filterbank.T @ spec.abs() ** 2
    return torch.log(mel + torch.finfo(torch.float32).eps)[None, None]


def sample_point_cloud(num_points: int = 4096) -> torch.Tensor:
    """A computed chair-like shape: seat, back and four legs, surface-sampled. (num_points, 3)."""
    g = torch.Generator().manual_seed(0)

    def box(n, lo, hi):
        lo, hi = torch.tensor(lo), torch.tensor(hi)
        p = lo + torch.rand(n, 3, generator=g) * (hi - lo)
        # push every point to the nearest face so the box is a surface
        axis = torch.randint(0, 3, (n,), generator=g)
        side = torch.randint(0, 2, (n,), generator=g).bool()
        p[torch.arange(n), axis] = torch.where(side, hi[axis], lo[axis])
        return p

    parts = [
        box(num_points * 3 // 8, [-0.5, -0.05, -0.5], [0.5, 0.05, 0.5]),  # seat
        box(num_points * 2 // 8, [-0.5, 0.05, 0.4], [0.5, 0.9, 0.5]),  # back
    ]
    leg = num_points * 3 // 8 // 4
    for x in (-0.45, 0.4):
        for z in (-0.45, 0.4):
            parts.append(box(leg, [x, -0.8, z], [x + 0.05, -0.05, z + 0.05]))
    return torch.cat(parts)


def make_figure(out: str | Path, views: int = 3, seed: int = 0) -> Path:
    """Draw the figure and save it to ``out`` (any format matplotlib writes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = torch.Generator().manual_seed(seed)
    image = sample_image()
    log_mel = sample_log_mel()
    points = sample_point_cloud()
    segment = torch.zeros(points.shape[0], dtype=torch.long)

    fig = plt.figure(figsize=(3.2 * (views + 1), 9.6))
    rows = [
        ("image", f"{IMAGE_BINS} bins per RGB channel"),
        ("log-mel", f"{AUDIO_BINS} bins per spectrogram"),
        ("points", f"{POINT_BINS} bins on each of x, y, z"),
    ]
    for col in range(views + 1):
        title = "original" if col == 0 else f"RQ view {col}"
        if col == 0:
            img, mel, pts = image, log_mel, points
        else:
            img = randomized_quantize(image, IMAGE_BINS, generator=g)
            mel = randomized_quantize(log_mel, AUDIO_BINS, generator=g)
            pts = randomized_quantize(
                points, POINT_BINS, channel_dim=-1, segment_ids=segment, generator=g
            )
        ax = fig.add_subplot(3, views + 1, col + 1)
        ax.imshow(img[0].permute(1, 2, 0).clamp(0, 1).numpy())
        ax.set_title(title)
        ax = fig.add_subplot(3, views + 1, views + 1 + col + 1)
        # one colour scale for the row: the original's range, which every view stays inside
        lo, hi = float(log_mel.min()), float(log_mel.max())
        ax.imshow(mel[0, 0].numpy(), origin="lower", aspect="auto", cmap="magma", vmin=lo, vmax=hi)
        ax = fig.add_subplot(3, views + 1, 2 * (views + 1) + col + 1, projection="3d")
        p = pts.numpy()
        ax.scatter(p[:, 0], p[:, 2], p[:, 1], s=1, c=p[:, 1], cmap="viridis")
        ax.view_init(elev=20, azim=-60)
        ax.set_box_aspect((1, 1, 1))
        for a in fig.axes[-3:]:
            a.set_xticks([])
            a.set_yticks([])
        ax.set_zticks([])
    for r, (name, bins) in enumerate(rows):
        fig.text(0.005, 1 - (r + 0.5) / 3, f"{name}\n{bins}", rotation=90, va="center", fontsize=11)
    fig.suptitle("Randomized quantization: original and augmented views", fontsize=14)
    fig.tight_layout(rect=(0.02, 0, 1, 0.97))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="figure.py", description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="output image path, e.g. rq_figure.png")
    ap.add_argument("--views", type=int, default=3, help="augmented views per row (default 3)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.views < 1:
        ap.error("--views must be >= 1")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        ap.exit(2, "figure.py needs matplotlib: pip install 'rq-core[train]'\n")
    path = make_figure(args.out, views=args.views, seed=args.seed)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
