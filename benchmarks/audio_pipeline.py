"""BYOL-A input pipeline: our batched on-device pipeline against the BYOL-A pattern.

Ours (rq_audio.BYOLA.make_views): the loader only crops waveforms; log-mel, pre-norm, two
augmented views for the whole batch and post-norm run inside the training step on the device.
BYOL-A pattern (byol-a train.py / v2 train_v2.py): every sample is turned into log-mel and
augmented on its own in DataLoader workers (per-sample Mixup with a list memory, per-sample
RandomResizeCrop with F.interpolate), then batched. Same ops, same settings.

Measured (same process, same data, clips per second):
  1. input pipeline only (waveform batch -> two post-normalized views), RQ and Mixup chains;
  2. a full pretraining step (views + AudioNTT2020 BYOL forward/backward) at the demo's encoder
     size, to show how much of a step the pipeline is on this machine;
  3. log-mel backends: nnAudio and torchaudio on a batch against librosa clip by clip.

    .venv/bin/python benchmarks/audio_pipeline.py [--batch 64] [--batches 5] [--workers 2]

Prints ``ours / reference`` ratios (> 1: ours is faster). CPU numbers are ratios only.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import rq_core
import torch
import torch.nn.functional as F
from rq_audio.data.hdf5_cache import AudioClipDataset, prepare_audio_cache
from rq_audio.learner import BYOLA, MIXUP_AUGMENTATIONS, RQ_AUGMENTATIONS
from rq_audio.log_mel import LogMelSpectrogram
from rq_audio.normalization import NormalizeBatch
from rq_audio.testing import write_tone_folder
from torch.utils.data import DataLoader, Dataset, RandomSampler

UNIT = 15200  # 0.95 s at 16 kHz (byol-a config.yaml unit_sec)


class PerSampleViews(Dataset):
    """The BYOL-A pattern: log-mel + pre-norm + two augmented views per sample, in workers."""

    def __init__(self, cache: Path, chain: str, mean: float, std: float) -> None:
        self.clips = AudioClipDataset(cache, UNIT, random_crop=True, seed=0)
        self.chain, self.mean, self.std = chain, mean, std
        self.memory: list[torch.Tensor] = []  # per-worker FIFO, as MixupBYOLA
        self.to_mel = None

    def __len__(self) -> int:
        return 10**9

    def _mixup(self, x: torch.Tensor) -> torch.Tensor:
        alpha = 0.4 * np.random.random()
        out = x
        if self.memory:
            z = self.memory[np.random.randint(len(self.memory))]
            out = torch.log((1 - alpha) * x.exp() + alpha * z.exp() + torch.finfo(x.dtype).eps)
        self.memory = (self.memory + [x])[-2048:]
        return out

    @staticmethod
    def _random_resize_crop(lms: torch.Tensor) -> torch.Tensor:
        _, F_, T = lms.shape
        ch, cw = F_, int(T * 1.5)
        canvas = torch.zeros(lms.shape[0], ch, cw)
        y, x = (ch - F_) // 2, (cw - T) // 2
        canvas[:, y : y + F_, x : x + T] = lms
        h = int(np.clip(int(np.random.uniform(0.6, 1.5) * F_), 1, ch))
        w = int(np.clip(int(np.random.uniform(0.6, 1.5) * T), 1, cw))
        i = random.randint(0, ch - h) if ch > h else 0
        j = random.randint(0, cw - w) if cw > w else 0
        crop = canvas[:, i : i + h, j : j + w]
        return F.interpolate(crop[None], size=(F_, T), mode="bicubic", align_corners=True)[0]

    def _view(self, lms: torch.Tensor) -> torch.Tensor:
        if self.chain == "mixup":
            return self._random_resize_crop(self._mixup(lms))
        return rq_core.randomized_quantize(self._random_resize_crop(lms)[None], 5, channel_dim=1)[0]

    def __getitem__(self, i: int):
        if self.to_mel is None:
            torch.set_num_threads(1)
            self.to_mel = LogMelSpectrogram(backend="torchaudio")
        wav = self.clips[i % len(self.clips)]
        lms = (self.to_mel(wav[None]) - self.mean) / self.std  # (1, F, T)
        return self._view(lms), self._view(lms)


def _time(fn, batches: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(batches):
        fn()
    return time.perf_counter() - start


def make_cache(root: Path) -> Path:
    meta = write_tone_folder(root / "tones", classes=4, per_split=(40, 4, 4), seconds=2.0)
    return prepare_audio_cache(
        root / "tones", root / "tones.h5", metadata=meta, progress=False
    ).path


def bench_pipeline(
    cache: Path,
    chain: str,
    batch: int,
    batches: int,
    workers: int,
    model_size: dict | None,
    backend: str = "torchaudio",
):
    chain_cfg = RQ_AUGMENTATIONS if chain == "rq" else MIXUP_AUGMENTATIONS
    size = model_size or dict(
        feature_dim=64, projection_hidden_dim=64, projection_dim=32, encoder_channels=8
    )
    # Equal settings: the reference pattern computes log-mel with torchaudio per sample.
    ours = BYOLA(augmentations=chain_cfg, log_mel={"backend": backend}, **size)
    ours.set_norm_stats(-8.0, 4.0)
    reference = BYOLA(augmentations=chain_cfg, **size)
    opt_ours, opt_ref = ours.configure_optimizers(), reference.configure_optimizers()
    post_norm = NormalizeBatch()
    clips = AudioClipDataset(cache, UNIT, random_crop=True, seed=0)
    endless = RandomSampler(clips, replacement=True, num_samples=10**9)
    ours_loader = iter(
        DataLoader(
            clips,
            batch_size=batch,
            sampler=endless,
            num_workers=workers,
            persistent_workers=workers > 0,
            drop_last=True,
        )
    )
    ref_loader = iter(
        DataLoader(
            PerSampleViews(cache, chain, -8.0, 4.0),
            batch_size=batch,
            num_workers=workers,
            persistent_workers=workers > 0,
        )
    )

    def ours_views():
        return ours.make_views(next(ours_loader))

    def ref_views():
        v0, v1 = next(ref_loader)
        views = post_norm(torch.cat([v0, v1]))
        return views[:batch], views[batch:]

    def step(module, opt, views_fn):
        def run():
            v0, v1 = views_fn()
            loss = module.byol_loss(v0, v1)
            opt.zero_grad()
            loss.backward()
            opt.step()

        return run

    results = {}
    if model_size is None:
        results["pipeline"] = (_time(ref_views, batches), _time(ours_views, batches))
    else:
        results["step"] = (
            _time(step(reference, opt_ref, ref_views), batches),
            _time(step(ours, opt_ours, ours_views), batches),
        )
    return results


def bench_log_mel(batch: int, repeats: int) -> dict[str, float]:
    import librosa

    wav = torch.randn(batch, UNIT) * 0.1
    fb = librosa.filters.mel(sr=16000, n_fft=1024, n_mels=64, fmin=60, fmax=7800)

    def with_librosa():
        for w in wav.numpy():
            np.log(
                fb @ np.abs(librosa.stft(w, n_fft=1024, hop_length=160)) ** 2
                + np.finfo(np.float32).eps
            )

    t_lib = _time(with_librosa, repeats)
    out = {}
    for backend in ("nnaudio", "torchaudio"):
        mel = LogMelSpectrogram(backend=backend)
        out[backend] = t_lib / _time(lambda m=mel: m(wav), repeats)
    return out


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--batches", type=int, default=5)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--no-step", action="store_true", help="skip the full-step comparison")
    args = p.parse_args()
    torch.manual_seed(0)
    load = os.getloadavg()[0]
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load {load:.1f}; torch {torch.__version__}, threads {torch.get_num_threads()}; "
        f"batch {args.batch}, {args.batches} batches, {args.workers} loader workers"
    )
    with tempfile.TemporaryDirectory() as tmp:
        cache = make_cache(Path(tmp))
        for chain, backend in (("rq", "torchaudio"), ("mixup", "torchaudio"), ("rq", "nnaudio")):
            ref, ours = bench_pipeline(
                cache, chain, args.batch, args.batches, args.workers, None, backend
            )["pipeline"]
            n = args.batch * args.batches
            print(
                f"pipeline [{chain:5s}, ours on {backend:10s}]  per-sample (BYOL-A) "
                f"{n / ref:8.1f} clips/s   "
                f"batched (ours) {n / ours:8.1f} clips/s   ours/reference {ref / ours:5.2f}x",
                flush=True,
            )
        if not args.no_step:
            size = dict(
                feature_dim=512, projection_hidden_dim=1024, projection_dim=128, encoder_channels=32
            )
            ref, ours = bench_pipeline(
                cache, "rq", args.batch, max(2, args.batches // 2), args.workers, size
            )["step"]
            n = args.batch * max(2, args.batches // 2)
            print(
                f"full step [rq, demo encoder]  per-sample {n / ref:6.1f} clips/s   "
                f"batched {n / ours:6.1f} clips/s"
                f"   ours/reference {ref / ours:5.2f}x",
                flush=True,
            )
    for backend, ratio in bench_log_mel(args.batch, 3).items():
        print(
            f"log-mel {backend:10s} (batch of {args.batch}) / librosa (clip by clip): "
            f"{ratio:5.1f}x faster",
            flush=True,
        )
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
