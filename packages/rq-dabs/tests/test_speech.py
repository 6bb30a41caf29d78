"""Speech domains: DABS's log-mel recipe (checked against librosa when it is installed) and the
readers on tiny LibriSpeech / Speech Commands / AudioMNIST archives in their real layouts."""

from __future__ import annotations

import io

import numpy as np
import pytest
from rq_dabs.data.base import check_dabs_item
from rq_dabs.data.catalog import DOMAINS, open_domain
from rq_dabs.data.speech import (
    MAX_LENGTH,
    AudioMNIST,
    GoogleSpeechCommands,
    LibriSpeech,
    LibriSpeechTransfer,
    dabs_log_mel,
)

soundfile = pytest.importorskip("soundfile")


def _audio(rng, seconds=0.2, rate=16000, fmt="WAV") -> bytes:
    buf = io.BytesIO()
    n = int(seconds * rate)
    wave = 0.3 * np.sin(
        2 * np.pi * rng.uniform(200, 800) * np.arange(n) / rate
    ) + 0.01 * rng.normal(size=n)
    soundfile.write(buf, wave.astype(np.float32), rate, format=fmt, subtype="PCM_16")
    return buf.getvalue()


def test_log_mel_is_dabs_librosa_recipe():
    librosa = pytest.importorskip("librosa")
    rng = np.random.default_rng(0)
    wave = np.zeros(MAX_LENGTH, dtype=np.float32)
    wave[:20000] = 0.1 * rng.normal(size=20000)
    for rate in (16000, 48000):
        ours = dabs_log_mel(wave, rate, -20.0, 10.0)
        assert ours.shape == (1, 224, 224)
        mel = librosa.feature.melspectrogram(
            y=wave.astype(np.float64), sr=rate, hop_length=672, n_mels=224, pad_mode="reflect"
        )
        ref = (librosa.power_to_db(mel**2) + 20.0) / 10.0
        np.testing.assert_allclose(ours[0].numpy(), ref, atol=1e-4)


def _run(dabs_data, tmp_path, name, filename, files, builder):
    speech = dabs_data.script("speech")
    mirror = tmp_path / "mirror"
    mirror.mkdir(exist_ok=True)
    archive = builder(mirror / filename, files)
    root = tmp_path / "root"
    original = speech.PUBLIC[name]
    from rq_dabs.data.download import Source

    sources = [
        Source(s.url, s.filename, md5=dabs_data.md5(archive))
        for s in original.sources
        if s.filename == filename
    ]
    speech.main(
        ["--root", str(root), "--mirror", str(mirror), "--only", name],
        public={name: speech.PublicSet(sources)},
    )
    return root


def test_librispeech_parts_and_dev_clean_speaker_split(tmp_path, dabs_data):
    rng = np.random.default_rng(1)
    files = {}
    for part, speakers in (("train-clean-100", (19, 26)), ("dev-clean", (84, 174))):
        for s in speakers:
            for u in range(10):
                files[f"LibriSpeech/{part}/{s}/100/{s}-100-{u:04d}.flac"] = _audio(rng, fmt="FLAC")
    files["LibriSpeech/dev-clean/84/100/84-100-0003.flac"] = b"not flac"
    # One tiny archive holds both parts (the real ones are one archive per part).
    root = _run(dabs_data, tmp_path, "librispeech", "dev-clean.tar.gz", files, dabs_data.tar_gz)
    with pytest.warns(UserWarning, match="is missing") as caught:
        pretrain = LibriSpeech(root, "train")
    assert (
        sum("is missing" in str(w.message) for w in caught) == 2
    )  # train-clean-360, train-other-500
    assert len(pretrain) == 20
    check_dabs_item(pretrain[0], LibriSpeech.spec())
    sizes = {s: len(LibriSpeechTransfer(root, s)) for s in ("train", "valid", "test")}
    assert sizes == {"train": 14, "valid": 2, "test": 4}  # 8 + 2 per speaker, a tenth of 8 valid
    test = LibriSpeechTransfer(root, "test")
    labels = []
    with pytest.warns(UserWarning, match="skipping unreadable audio"):
        for i in range(len(test)):
            labels.append(test[i][2])
    assert test.skipped == 1  # the broken clip fell in test; it is skipped, warned, counted
    assert set(labels) <= {0, 1}


def test_speech_commands_lists_and_audio_mnist_speakers(tmp_path, dabs_data):
    rng = np.random.default_rng(2)
    files = {f"{w}/{i:08x}_nohash_0.wav": _audio(rng) for w in ("yes", "no") for i in range(4)}
    files["_background_noise_/white_noise.wav"] = _audio(
        rng, seconds=12.0
    )  # longer than MAX_LENGTH
    files["validation_list.txt"] = b"yes/00000000_nohash_0.wav\n"
    files["testing_list.txt"] = b"no/00000001_nohash_0.wav\nyes/00000001_nohash_0.wav\n"
    root = _run(
        dabs_data,
        tmp_path,
        "google_speech",
        "speech_commands_v0.02.tar.gz",
        files,
        dabs_data.tar_gz,
    )
    sizes = {s: len(GoogleSpeechCommands(root, s)) for s in ("train", "valid", "test")}
    assert sizes == {"train": 6, "valid": 1, "test": 2}
    train = open_domain("google_speech", "train", root)
    assert {label for _, label in train.items} == {4, 6, 35}  # yes, no, background noise
    item = train[[label for _, label in train.items].index(35)]
    check_dabs_item(item, GoogleSpeechCommands.spec())

    files = {
        f"AudioMNIST-master/data/{s:02d}/{d}_{s:02d}_{i}.wav": _audio(rng, rate=48000)
        for s in (1, 12, 26)
        for d in (3, 7)
        for i in range(2)
    }
    root = _run(
        dabs_data, tmp_path, "audio_mnist", "AudioMNIST-master.zip", files, dabs_data.zip_file
    )
    sizes = {s: len(AudioMNIST(root, s)) for s in ("train", "valid", "test")}
    assert sizes == {"train": 4, "valid": 4, "test": 4}
    item = AudioMNIST(root, "test")[2]
    check_dabs_item(item, AudioMNIST.spec())
    assert item[2] == 7


def test_speech_domains_are_in_the_catalog():
    for name in ("librispeech", "librispeech_transfer", "google_speech", "audio_mnist"):
        spec = DOMAINS[name].dataset_class.spec()[0]
        assert (spec.input_size, spec.patch_size, spec.in_channels) == ((224, 224), (16, 16), 1)
