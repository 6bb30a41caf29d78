"""Text domains: WordPiece from a local vocab.txt (no hub), WikiText-103 lines and GLUE TSVs in
the layout data_scripts/dabs/text.py extracts, each built here as a tiny archive."""

from __future__ import annotations

import pytest
import torch
from rq_dabs.data.base import check_dabs_item
from rq_dabs.data.catalog import DOMAINS, open_domain
from rq_dabs.data.text import GLUE_TASKS, WikiText103, WordPiece, glue_dataset_class

VOCAB = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "the",
    "cat",
    "sat",
    "on",
    "mat",
    "a",
    "dog",
    "un",
    "##aff",
    "##able",
    "##s",
    ".",
    ",",
    "!",
    "'",
    "good",
    "bad",
    "film",
    "is",
    "was",
    "cafe",
    "中",
    "文",
    "run",
    "##ning",
    "it",
    "not",
    "no",
    "yes",
    "how",
    "why",
    "?",
    "s",
    "t",
    "won",
    "-",
]
SENTENCES = [
    "The cat sat on the mat.",
    "UnAffable dogs, running!",
    "  Café  \t is GOOD\n",
    "中文 and the unknownword",
    "It wasn't the film's fault -- no?",
    "",
    "x" * 120,
]


@pytest.fixture
def vocab(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    return path


def test_wordpiece_encodes_cls_text_sep_and_pads_to_128(vocab):
    tok = WordPiece(vocab, backend="python")
    ids = tok.encode("The cat sat on the mat.")
    assert len(ids) == 128
    assert ids[:9] == [2, 5, 6, 7, 8, 5, 9, 16, 3] and set(ids[9:]) == {0}
    assert tok.encode("unaffables")[:5] == [2, 12, 13, 14, 15]
    assert tok.encode("zzz")[1] == 1  # no piece fits: [UNK]
    pair = tok.encode("the " * 100, "cat " * 100)
    assert len(pair) == 128 and pair.count(3) == 2 and pair.count(5) + pair.count(6) == 125


def test_wordpiece_matches_the_tokenizers_library(vocab):
    pytest.importorskip("tokenizers")
    fast, slow = WordPiece(vocab, backend="tokenizers"), WordPiece(vocab, backend="python")
    assert fast.backend == "tokenizers"
    for a in SENTENCES:
        assert slow.encode(a) == fast.encode(a), a
        for b in SENTENCES[:3]:
            assert slow.encode(a, b) == fast.encode(a, b), (a, b)
    long_a, long_b = " ".join(["cat"] * 90), " ".join(["dog"] * 71)
    assert slow.encode(long_a, long_b) == fast.encode(long_a, long_b)


def _text_root(tmp_path, dabs_data, vocab):
    """Run data_scripts/dabs/text.py on tiny WikiText / GLUE zips; returns the data root."""
    text = dabs_data.script("text")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    wiki = "\n = Title = \n\n the cat sat on the mat . \n\n a dog \n"
    archives = {
        "wikitext-103-v1.zip": dabs_data.zip_file(
            mirror / "wikitext-103-v1.zip",
            {f"wikitext-103/wiki.{s}.tokens": wiki.encode() for s in ("train", "valid", "test")},
        )
    }
    sst = "sentence\tlabel\n" + "".join(
        f"the film {'is good' if i % 2 else 'was bad'} .\t{i % 2}\n" for i in range(40)
    )
    archives["SST-2.zip"] = dabs_data.zip_file(
        mirror / "SST-2.zip",
        {
            "SST-2/train.tsv": (sst + "a broken row without label\n").encode(),
            "SST-2/dev.tsv": "".join(sst.splitlines(True)[:6]).encode(),
            "SST-2/test.tsv": b"index\tsentence\n0\tthe cat\n",
        },
    )
    cola = "".join(f"gj04\t{i % 2}\t\tthe cat sat {i} .\n" for i in range(20))
    archives["CoLA.zip"] = dabs_data.zip_file(
        mirror / "CoLA.zip", {"CoLA/train.tsv": cola.encode(), "CoLA/dev.tsv": cola.encode()}
    )
    header = (
        "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
    )
    sts = header + "".join(
        f"{i}\tmain\tf\t2012\t{i}\tnone\tnone\tthe cat\ta dog sat\t{i / 4:.2f}\n" for i in range(20)
    )
    archives["STS-B.zip"] = dabs_data.zip_file(
        mirror / "STS-B.zip", {"STS-B/train.tsv": sts.encode(), "STS-B/dev.tsv": sts.encode()}
    )
    labels = ("entailment", "neutral", "contradiction")
    cols = (
        "index\tpromptID\tpairID\tgenre\ts1b\ts2b\ts1p\ts2p\t"
        "sentence1\tsentence2\tlabel1\tgold_label\n"
    )
    mnli = cols + "".join(
        f"{i}\t0\t0\tg\t-\t-\t-\t-\tthe cat\tno dog\t{labels[i % 3]}\t{labels[i % 3]}\n"
        for i in range(30)
    )
    archives["MNLI.zip"] = dabs_data.zip_file(
        mirror / "MNLI.zip",
        {
            "MNLI/train.tsv": mnli.encode(),
            "MNLI/dev_matched.tsv": mnli.encode(),
            "MNLI/dev_mismatched.tsv": mnli.encode(),
        },
    )
    public = {}
    names = {
        "wikitext103": "wikitext-103-v1.zip",
        "glue_sst2": "SST-2.zip",
        "glue_cola": "CoLA.zip",
        "glue_stsb": "STS-B.zip",
        "glue_mnli": "MNLI.zip",
    }
    from rq_dabs.data.download import Source

    for name, filename in names.items():
        src = text.PUBLIC[name].sources[0]
        assert src.filename == filename
        public[name] = text.PublicSet(
            [Source(src.url, filename, md5=dabs_data.md5(archives[filename]))]
        )
    root = tmp_path / "root"
    text.main(["--root", str(root), "--mirror", str(mirror), "--vocab", str(vocab)], public=public)
    return root


def test_text_script_output_feeds_every_text_reader(tmp_path, dabs_data, vocab):
    root = _text_root(tmp_path, dabs_data, vocab)
    wiki = WikiText103(root, "train", backend="python")
    assert len(wiki) == 3  # the non-empty lines
    item = wiki[1]
    check_dabs_item(item, WikiText103.spec())
    assert item[1][:9].tolist() == [2, 5, 6, 7, 8, 5, 9, 16, 3]

    with pytest.warns(UserWarning, match="skipped 1 bad rows"):
        sst_train = glue_dataset_class("sst2")(root, "train", backend="python")
    assert sst_train.skipped == 1
    assert len(sst_train) == 38
    with pytest.warns(UserWarning, match="skipped 1 bad rows"):
        assert len(open_domain("sst2", "valid", root)) == 2  # a seeded 5 % of train.tsv
    assert len(open_domain("sst2", "test", root)) == 5  # dev.tsv
    check_dabs_item(sst_train[0], glue_dataset_class("sst2").spec())
    assert {sst_train[i][2] for i in range(len(sst_train))} == {0, 1}

    cola = open_domain("cola", "test", root)[3]
    assert cola[2] == 1.0 and isinstance(cola[2], float)
    sts = open_domain("stsb", "test", root)
    assert sts[4][2] == pytest.approx(1.0)
    mnli = open_domain("mnli_mismatched", "test", root)
    assert [mnli[i][2] for i in range(3)] == [0, 1, 2] and mnli.num_classes() == 3
    batch = torch.utils.data.default_collate([mnli[i] for i in range(4)])
    assert batch[1].shape == (4, 128) and batch[1].dtype == torch.long


def test_text_domains_are_in_the_catalog_with_dabs_metrics():
    assert DOMAINS["wikitext103"].dataset_class.spec()[0].vocab_size == 30522
    assert (DOMAINS["stsb"].loss, DOMAINS["stsb"].metric) == ("mse", "spearman")
    assert (DOMAINS["cola"].loss, DOMAINS["cola"].metric) == ("binary_cross_entropy", "pearson")
    assert (DOMAINS["mnli_matched"].loss, DOMAINS["mnli_matched"].metric) == (
        "cross_entropy",
        "accuracy",
    )
    assert set(GLUE_TASKS) <= set(DOMAINS)


def test_a_missing_vocabulary_says_how_to_install_one(tmp_path):
    corpus = tmp_path / "text" / "wikitext103" / "wikitext-103" / "wiki.train.tokens"
    corpus.parent.mkdir(parents=True)
    corpus.write_text(" the cat \n")
    with pytest.raises(FileNotFoundError, match="--vocab"):
        WikiText103(tmp_path, "train")


def test_mrpc_is_built_from_the_msr_files_as_glue_does(tmp_path, dabs_data, vocab):
    text = dabs_data.script("text")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    head = "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
    rows = "".join(
        f"{i % 2}\t{100 + i}\t{200 + i}\tthe cat sat .\tthe {'cat' if i % 2 else 'dog'} sat .\n"
        for i in range(10)
    )
    (mirror / "msr_paraphrase_train.txt").write_text(head + rows, encoding="utf-8")
    (mirror / "msr_paraphrase_test.txt").write_text(head + rows[:200], encoding="utf-8")
    (mirror / "mrpc_dev_ids.tsv").write_text("101\t201\n104\t204\n")
    archives = {
        name: mirror / name
        for name in ("msr_paraphrase_train.txt", "msr_paraphrase_test.txt", "mrpc_dev_ids.tsv")
    }
    root = tmp_path / "root"
    dabs_data.run_pinned(text, "glue_mrpc", archives, root, mirror)
    text.install_vocab(vocab, root)
    mrpc = glue_dataset_class("mrpc")
    assert len(mrpc(root, "test", backend="python")) == 2  # dev.tsv: the two dev ids
    assert (
        len(mrpc(root, "train", backend="python")) + len(mrpc(root, "valid", backend="python")) == 8
    )
    item = mrpc(root, "test", backend="python")[0]
    assert item[2] == 1 and item[1][:5].tolist() == [2, 5, 6, 7, 16]
    assert text.PUBLIC["glue_qnli"].sources[0].filename == "QNLIv2.zip"
