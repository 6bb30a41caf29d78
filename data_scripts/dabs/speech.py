"""Speech of DABS: LibriSpeech (pretraining: train-clean-100/360, train-other-500; transfer:
dev-clean), Speech Commands v0.02 and AudioMNIST (transfer); VoxCeleb1 needs registration.

LibriSpeech and Speech Commands checksums are the ones torchaudio verifies. AudioMNIST is a
GitHub repository; its archive has no published checksum (recorded at first download).
rq-dabs reads the extracted folders as they are (no prepare step): domains ``librispeech``
(pretraining), ``librispeech_transfer``, ``google_speech``, ``audio_mnist``, each clip a
224 x 224 log-mel image as DABS makes it (needs ``pip install "rq-dabs[speech]"``).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dabs_script import PublicSet, run  # noqa: E402
from rq_dabs.data.download import Source  # noqa: E402

LIBRISPEECH = {
    "dev-clean": "76f87d090650617fca0cac8f88b9416e0ebf80350acb97b343a85fa903728ab3",
    "train-clean-100": "d4ddd1d5a6ab303066f14971d768ee43278a5f2a0aa43dc716b0e64ecbbbf6e2",
    "train-clean-360": "146a56496217e96c14334a160df97fffedd6e0a04e66b9c5af0d40be3c792ecf",
    "train-other-500": "ddb22f27f96ec163645d53215559df6aa36515f26e01dd70798188350adcb6d2",
}

PUBLIC = {
    "librispeech": PublicSet(
        [
            Source(
                f"http://www.openslr.org/resources/12/{part}.tar.gz",
                f"{part}.tar.gz",
                sha256=digest,
            )
            for part, digest in LIBRISPEECH.items()
        ],
        note="pretraining (960 h) and transfer (dev-clean speakers)",
    ),
    "google_speech": PublicSet(
        [
            Source(
                "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz",
                "speech_commands_v0.02.tar.gz",
                sha256="af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58",
            )
        ],
        note="Speech Commands v0.02 (35 words)",
    ),
    "audio_mnist": PublicSet(
        [
            Source(
                "https://github.com/soerenab/AudioMNIST/archive/refs/heads/master.zip",
                "AudioMNIST-master.zip",
            )
        ],
        note="AudioMNIST (spoken digits, 60 speakers)",
    ),
}
REGISTRATION = {
    "voxceleb1": (
        "VoxCeleb1: request access at https://www.robots.ox.ac.uk/~vgg/data/voxceleb/vox1.html, "
        "download the dev and test wav archives and iden_split.txt, and extract them to "
        "ROOT/speech/voxceleb1/ so that ROOT/speech/voxceleb1/iden_split.txt and "
        "ROOT/speech/voxceleb1/wav/<speaker>/<video>/<clip>.wav exist."
    ),
}


def main(argv=None, public=None):
    return run("speech", public if public is not None else PUBLIC, REGISTRATION, argv)


if __name__ == "__main__":
    main()
