import subprocess
import sys

CHECK = """
import sys
import rq_dabs.algorithms, rq_dabs.data.catalog, rq_dabs.data.download, rq_dabs.pretrain
import rq_dabs.learner, rq_dabs.evaluate, rq_dabs.encoder
# lightning itself may pull PIL/scipy (and librosa via torchmetrics)
optional = {'sklearn', 'rq_audio', 'rq_points', 'torchaudio', 'soundfile', 'tokenizers'}
print(sorted(optional & {name.split('.')[0] for name in sys.modules}))
"""


def test_the_library_imports_no_optional_or_other_modality_package():
    # scikit-learn (digits) is imported lazily (PIL and scipy too, though lightning may load them),
    # and no other modality package is ever imported.
    done = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
