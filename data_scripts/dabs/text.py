"""Text of DABS: WikiText-103 (pretraining) and the GLUE tasks (transfer).

DABS tokenizes with the ``bert-base-uncased`` WordPiece vocabulary (ids of length 128); no hub
is reached at run time: pass ``--vocab PATH`` to a local ``vocab.txt`` (from any copy of
bert-base-uncased) and it is copied to ROOT/text/vocab.txt, where rq-dabs looks for it. GLUE
files are the ones of the GLUE benchmark's download script; none of these archives publishes a
checksum, so the first download's SHA-256 is recorded and later runs verify against it.

rq-dabs reads what this script leaves: domains ``wikitext103`` (pretraining) and ``cola``,
``sst2``, ``mrpc``, ``qqp``, ``stsb``, ``mnli_matched``, ``mnli_mismatched``, ``qnli``, ``rte``,
``wnli`` (transfer), all as 128 WordPiece ids of ROOT/text/vocab.txt.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dabs_script import PublicSet, run  # noqa: E402
from rq_dabs.data.download import Source  # noqa: E402

GLUE_BASE = "https://dl.fbaipublicfiles.com/glue/data/"
SENTEVAL_BASE = "https://dl.fbaipublicfiles.com/senteval/senteval_data/"
GLUE_TASKS = ("CoLA", "SST-2", "MRPC", "QQP", "STS-B", "MNLI", "QNLI", "RTE", "WNLI")


def prepare_mrpc(set_dir: Path) -> None:
    """MSR paraphrase train/test + GLUE's dev ids -> MRPC/{train,dev,test}.tsv (header
    ``Quality, #1 ID, #2 ID, #1 String, #2 String``): train rows whose id pair is a dev id go to
    dev.tsv, as GLUE's download script splits them."""
    archives = set_dir / "archives"
    dev_ids = {
        tuple(line.strip().split("\t"))
        for line in (archives / "mrpc_dev_ids.tsv").read_text(encoding="utf-8").splitlines()
        if line.strip()
    }
    out = set_dir / "MRPC"
    out.mkdir(parents=True, exist_ok=True)
    header = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
    lines = (archives / "msr_paraphrase_train.txt").read_text(encoding="utf-8-sig").splitlines()[1:]
    with (
        open(out / "train.tsv", "w", encoding="utf-8") as train,
        open(out / "dev.tsv", "w", encoding="utf-8") as dev,
    ):
        train.write(header)
        dev.write(header)
        for line in lines:
            fields = line.strip().split("\t")
            if len(fields) != 5:
                continue
            (dev if (fields[1], fields[2]) in dev_ids else train).write("\t".join(fields) + "\n")
    test = (archives / "msr_paraphrase_test.txt").read_text(encoding="utf-8-sig").splitlines()[1:]
    with open(out / "test.tsv", "w", encoding="utf-8") as f:
        f.write("index\t#1 ID\t#2 ID\t#1 String\t#2 String\n")
        for i, line in enumerate(x for x in test if len(x.strip().split("\t")) == 5):
            _, id1, id2, s1, s2 = line.strip().split("\t")
            f.write(f"{i}\t{id1}\t{id2}\t{s1}\t{s2}\n")


PUBLIC = {
    "wikitext103": PublicSet(
        [
            Source(
                "https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-103-v1.zip",
                "wikitext-103-v1.zip",
            )
        ],
        note="pretraining corpus (103M tokens)",
    ),
    **{
        f"glue_{task.lower().replace('-', '')}": PublicSet(
            [Source(GLUE_BASE + f"{task}.zip", f"{task}.zip")], note=f"GLUE {task} (transfer)"
        )
        for task in GLUE_TASKS
        if task not in ("MRPC", "QNLI")
    },
    # GLUE's download script (nyu-mll/GLUE-baselines download_glue_data.py) gets QNLI as QNLIv2.zip
    # (folder QNLI/) and builds MRPC from the MSR paraphrase files plus GLUE's dev ids.
    "glue_qnli": PublicSet(
        [Source(GLUE_BASE + "QNLIv2.zip", "QNLIv2.zip")], note="GLUE QNLI (transfer)"
    ),
    "glue_mrpc": PublicSet(
        [
            Source(SENTEVAL_BASE + "msr_paraphrase_train.txt", "msr_paraphrase_train.txt"),
            Source(SENTEVAL_BASE + "msr_paraphrase_test.txt", "msr_paraphrase_test.txt"),
            Source(GLUE_BASE + "mrpc_dev_ids.tsv", "mrpc_dev_ids.tsv"),
        ],
        prepare=prepare_mrpc,
        note="GLUE MRPC (transfer), built into MRPC/{train,dev,test}.tsv as GLUE's script does",
    ),
}
REGISTRATION: dict[str, str] = {}


def install_vocab(vocab: Path, root: Path) -> Path:
    """Copy a local BERT ``vocab.txt`` (one WordPiece per line, 30,522 lines for
    bert-base-uncased) to ROOT/text/vocab.txt after a sanity check."""
    lines = vocab.read_text(encoding="utf-8").splitlines()
    if "[CLS]" not in lines or "[SEP]" not in lines or "[PAD]" not in lines:
        raise ValueError(f"{vocab} does not look like a BERT vocab.txt (no [CLS]/[SEP]/[PAD])")
    target = root / "text" / "vocab.txt"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(vocab, target)
    print(f"[text] vocabulary of {len(lines)} pieces -> {target}")
    return target


def main(argv=None, public=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    vocab = None
    if "--vocab" in argv:
        i = argv.index("--vocab")
        vocab = Path(argv[i + 1])
        del argv[i : i + 2]
    done = run("text", public if public is not None else PUBLIC, REGISTRATION, argv)
    if vocab is not None:
        from dabs_script import default_root

        root = Path(argv[argv.index("--root") + 1]) if "--root" in argv else default_root()
        install_vocab(vocab, root)
    return done


if __name__ == "__main__":
    main()
