"""The typed config of every ``rq-byol-a`` command (one schema; each command reads its part).

Defaults are the paper's setting: BYOL-A v1 (nttcslab/byol-a config.yaml) with Mixup replaced
by RQ (5 bins) after random resized crop (Wu et al., ICCV 2023, Sec. 5.3).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING
from rq_core.training import TrainerConfig

__all__ = ["ByolAConfig"]


def _rq_chain() -> list[Any]:
    return [
        # byol_a/augmentations.py RandomResizeCrop defaults, as train.py uses them.
        {"name": "random_resize_crop", "virtual_crop_scale": [1.0, 1.5], "freq_scale": [0.6, 1.5], "time_scale": [0.6, 1.5]},
        # The paper: 5 bins for audio; one quantizer per spectrogram (reference module on (B,1,F,T)).
        {"name": "rq", "num_bins": 5, "channel_mode": "sample"},
    ]


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
    max_failure_fraction: float = 0.5  # ARCHITECTURE.md: a dataset where most files fail is an error
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
    probe_lr: float = 3e-4  # EVAR config/byola.yaml lr_lineareval
    probe_max_epochs: int = 200  # EVAR lineareval.py default epochs
    probe_patience: int = 20  # EVAR config/byola.yaml early_stop_epochs


@dataclass
class EmbedSettings:
    checkpoint: str = "${run_dir}/checkpoints/encoder.pt"
    source: SourceSettings = field(default_factory=SourceSettings)
    unit_sec: float = 1.0
    output: str = "${run_dir}/embeddings.npz"
    batch_size: int = 64


@dataclass
class CorpusSettingsConfig:
    """rq_audio.data.corpus.CorpusSettings: the offline corpus's size and seed."""

    notes_per_family: int = 100
    speakers: int = 60
    takes_per_word: int = 2
    unlabeled_notes: int = 400
    unlabeled_words: int = 400
    seed: int = 0
    word_snr_db: list[float] | None = None  # [low, high] dB of background noise on spoken words


@dataclass
class DemoSettings:
    corpus: CorpusSettingsConfig = field(default_factory=CorpusSettingsConfig)
    # [{name: rq, augmentations: [...]}, ...]: each method is pretrained with its chain
    methods: list[Any] = field(default_factory=list)
    # Seed of the random-init baseline's weights. None: trainer.seed, i.e. the very weights every
    # pretraining of this config starts from, so the table shows what pretraining added (a paired
    # comparison; mid-net's `pretrained=random` does the same).
    random_init_seed: int | None = None


@dataclass
class ByolAConfig:
    run_dir: str = "runs/byol-a"
    data_root: str = "data/audio"  # where data_scripts/audio put the datasets (configs interpolate it)
    cache_dir: str = ""  # "" -> $RQ_CACHE or ~/.cache/rq
    audio: AudioSettings = field(default_factory=AudioSettings)
    prepare: PrepareSettings = field(default_factory=PrepareSettings)
    data: DataSettings = field(default_factory=DataSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    augmentations: list[Any] = field(default_factory=_rq_chain)
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(max_epochs=100))  # config.yaml epochs
    embed: EmbedSettings = field(default_factory=EmbedSettings)
    evaluate: EvaluateSettings = field(default_factory=EvaluateSettings)
    demo: DemoSettings = field(default_factory=DemoSettings)
