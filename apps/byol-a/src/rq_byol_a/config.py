"""The typed config of every ``rq-byol-a`` command: one class, :class:`ByolAAppConfig`; each
command reads its part. The library's own dataclasses are embedded, not copied: the trainer
(``rq_core.training.TrainerConfig``), the probe (``rq_core.linear_probe.ProbeSettings``) and
the demo corpus (``rq_audio.data.corpus.CorpusSettings``).

Defaults are the paper's setting: BYOL-A v1 (nttcslab/byol-a config.yaml) with Mixup replaced
by RQ (5 bins) after random resized crop (Wu et al., ICCV 2023, Sec. 5.3): ``method=rq``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING
from rq_audio.data.corpus import CorpusSettings
from rq_core.linear_probe import ProbeSettings
from rq_core.sweep import SweepConfig
from rq_core.training import TrainerConfig

__all__ = ["ByolAAppConfig"]


@dataclass
class AudioSettings:
    """Log-mel front end; values from byol-a config.yaml."""

    sample_rate: int = 16000  # config.yaml sample_rate
    n_fft: int = 1024  # config.yaml n_fft
    win_length: int = 1024  # config.yaml win_length
    hop_length: int = 160  # config.yaml hop_length
    n_mels: int = 64  # config.yaml n_mels
    f_min: float = 60.0  # config.yaml f_min
    f_max: float = 7800.0  # config.yaml f_max
    backend: str = "nnaudio"  # v2/train_v2.py computes log-mel on the device with nnAudio
    filterbank: str = "htk"  # torchaudio backend only: "htk" or "librosa"


@dataclass
class PrepareSettings:
    min_seconds: float = 0.1  # shorter files are skipped as too short
    # docs/architecture.md, "Data contracts": a dataset where most files fail is an error
    max_failure_fraction: float = 0.5
    num_threads: int = 2


@dataclass
class SourceSettings:
    """A folder of audio (+ optional EVAR metadata.csv) and the HDF5 cache made from it."""

    audio_dir: str | None = None
    metadata: str | None = None
    cache: str = ""  # required by the commands that use this source
    max_seconds: float | None = None  # keep at most this much of each clip


@dataclass
class DataSettings:
    pretrain: SourceSettings = field(default_factory=SourceSettings)
    unit_sec: float = 0.95  # config.yaml unit_sec
    batch_size: int = 256  # config.yaml bs
    num_workers: int = 8  # config.yaml num_workers
    norm_stats_clips: int = 10000  # evaluate.py calc_norm_stats n_stats=10000


@dataclass
class ModelSettings:
    feature_dim: int = 2048  # config.yaml feature_d
    projection_hidden_dim: int = 4096  # config.yaml proj_dim
    projection_dim: int = 256  # config.yaml proj_size
    ema_decay: float = 0.99  # config.yaml ema_decay
    lr: float = 3e-4  # config.yaml lr (Adam)
    encoder_channels: int = 64  # AudioNTT2020 conv width (models.py)


@dataclass
class TaskSettings(SourceSettings):
    name: str = MISSING
    unit_sec: float = MISSING  # EVAR evar/ds_tasks.py per-task duration


@dataclass
class EvaluateSettings:
    checkpoint: str = "${run_dir}/checkpoints/encoder.pt"  # or "random" for a random-init encoder
    tasks: list[TaskSettings] = field(default_factory=list)
    seeds: list[int] = field(default_factory=lambda: [42, 43, 44])
    batch_size: int = 64
    device: str = "cpu"
    # EVAR's probe (lr 3e-4 from config/byola.yaml lr_lineareval, 200 epochs, patience 20)
    probe: ProbeSettings = field(default_factory=ProbeSettings)


@dataclass
class EmbedSettings:
    checkpoint: str = "${run_dir}/checkpoints/encoder.pt"
    source: SourceSettings = field(default_factory=SourceSettings)
    unit_sec: float = 1.0
    output: str = "${run_dir}/embeddings.npz"
    batch_size: int = 64


@dataclass
class RQSettings:
    """Values that replace the preset's ``rq`` entry (rq_audio.augmentations.RandomQuantizeAudio
    arguments); ``None`` keeps the preset's (5 bins, ``sample``, random spacing and collapse)."""

    num_bins: int | None = None
    channel_mode: str | None = None  # sample | frequency
    spacing: str | None = None  # random | uniform
    collapse: str | None = None  # random | middle
    p: float | None = None  # probability of quantizing a sample


@dataclass
class DemoSettings:
    corpus: CorpusSettings = field(default_factory=CorpusSettings)  # size and seed
    # The methods pretrained, each a row: a preset name (`rq`, `mixup`: its chain with the
    # config's `rq` overrides) or {name: ..., augmentations: [...]} (an explicit chain).
    methods: list[Any] = field(default_factory=lambda: ["rq", "mixup"])
    # Seed of the random-init baseline's weights. None: trainer.seed, i.e. the very weights every
    # pretraining of this config starts from, so the table shows what pretraining added (a paired
    # comparison; mid-net's `pretrained=random` does the same).
    random_init_seed: int | None = None


@dataclass
class ByolAAppConfig:
    run_dir: str = "runs/byol-a"
    # where data_scripts/audio put the datasets (configs interpolate it)
    data_root: str = "data/audio"
    cache_dir: str = ""  # "" -> $RQ_CACHE or ~/.cache/rq (rq_core.runs.cache_root)
    force: bool = False  # redo finished stages (pretrainings): the old ones are moved aside
    audio: AudioSettings = field(default_factory=AudioSettings)
    prepare: PrepareSettings = field(default_factory=PrepareSettings)
    data: DataSettings = field(default_factory=DataSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    # The method preset (rq_audio.learner.METHOD_CHAINS): `rq`, the paper's chain (random
    # resized crop, then RQ with 5 bins, one quantizer per spectrogram; Wu et al., ICCV 2023,
    # Sec. 5.3), or `mixup`, BYOL-A's (Mixup 0.4 then random resized crop; nttcslab/byol-a).
    method: str = "rq"
    # Changes to the preset's `rq` entry (a chain without one ignores them), e.g. the demo's
    # rq.channel_mode=frequency; the sweep sets rq.num_bins / spacing / collapse per point.
    rq: RQSettings = field(default_factory=RQSettings)
    # An explicit chain ([{name: ..., ...}, ...]) replaces the preset; the run records which
    # chain it used and where it came from (pretrain_settings.json, results.json).
    augmentations: list[Any] | None = None
    # config.yaml epochs
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(max_epochs=100))
    embed: EmbedSettings = field(default_factory=EmbedSettings)
    evaluate: EvaluateSettings = field(default_factory=EvaluateSettings)
    demo: DemoSettings = field(default_factory=DemoSettings)
    # `sweep`: the bins (x spacing x collapse) of the `rq` entry of the RQ chain, one
    # pretraining + probe per point (rq_core.sweep).
    sweep: SweepConfig = field(default_factory=SweepConfig)
