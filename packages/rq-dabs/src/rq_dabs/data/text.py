"""Text of DABS: WikiText-103 (pretraining) and the GLUE tasks (transfer), as BERT WordPiece ids
of length 128 (DABS ``src/datasets/text/utils.py``: ``bert-base-uncased``, ``SEQ_LEN = 128``,
``VOCAB_SIZE = 30522``, ``padding='max_length'``, ``truncation=True``).

No hub is reached: the vocabulary is a local ``vocab.txt`` (``ROOT/text/vocab.txt``, put there by
``data_scripts/dabs/text.py --vocab PATH``). Tokenization uses the ``tokenizers`` library's
``BertWordPieceTokenizer`` when it is installed (``pip install "rq-dabs[text]"``), else a
small pure-Python implementation of the same algorithm (BERT's basic tokenizer -- clean,
split CJK characters, lowercase, strip accents, split on punctuation -- then greedy
longest-match WordPiece); a test checks the two give the same ids.

Files are the ones ``data_scripts/dabs/text.py`` extracts: WikiText-103's
``wikitext-103/wiki.{train,valid,test}.tokens`` (one item per non-empty line, as DABS's
Hugging Face ``wikitext-103-v1`` after its empty-text filter) and GLUE's ``<Task>/*.tsv``.
GLUE test labels are not public: DABS scores on the dev set, our ``test``; our ``valid`` is a
seeded 5 % of ``train.tsv`` held out of ``train``.
"""

from __future__ import annotations

import csv
import os
import unicodedata
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from rq_dabs.data.base import SPLITS, DomainDataset
from rq_dabs.specs import InputTokensSpec

__all__ = [
    "GLUE_TASKS",
    "GLUETask",
    "WikiText103",
    "WordPiece",
    "glue_dataset_class",
    "load_tokenizer",
    "vocab_path",
]

SEQ_LEN = 128
VOCAB_SIZE = 30522  # bert-base-uncased
SPECS = [InputTokensSpec(SEQ_LEN, VOCAB_SIZE)]


def vocab_path(root: str | Path) -> Path:
    path = Path(root) / "text" / "vocab.txt"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: install a local bert-base-uncased vocab.txt with "
            "`python data_scripts/dabs/text.py --vocab PATH/vocab.txt` (no hub is used)"
        )
    return path


def _is_whitespace(ch: str) -> bool:
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def _is_control(ch: str) -> bool:
    return ch not in "\t\n\r" and unicodedata.category(ch).startswith("C")


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


class WordPiece:
    """BERT's uncased WordPiece tokenizer from a ``vocab.txt``; ``encode`` gives ``[CLS] a
    [SEP] (b [SEP])`` ids truncated longest-first and padded with ``[PAD]`` to ``max_length``.

    >>> import tempfile, os
    >>> d = tempfile.mkdtemp(); p = os.path.join(d, "vocab.txt")
    >>> _ = open(p, "w").write(
    ...     "\\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "un", "##aff", "##able", ","])
    ... )
    >>> WordPiece(p, backend="python").encode("UnAffable, x", max_length=8)
    [2, 4, 5, 6, 7, 1, 3, 0]
    """

    def __init__(
        self, vocab: str | Path, *, backend: str = "auto", max_length: int = SEQ_LEN
    ) -> None:
        lines = Path(vocab).read_text(encoding="utf-8").splitlines()
        self.vocab = {token: i for i, token in enumerate(lines)}
        for special in ("[PAD]", "[UNK]", "[CLS]", "[SEP]"):
            if special not in self.vocab:
                raise ValueError(f"{vocab} lacks {special}: not a BERT vocab.txt")
        self.max_length = max_length
        if backend not in ("auto", "tokenizers", "python"):
            raise ValueError(f"backend must be auto, tokenizers or python, got {backend!r}")
        self._fast = None
        if backend != "python":
            try:
                from tokenizers import BertWordPieceTokenizer
            except ImportError:
                if backend == "tokenizers":
                    raise
            else:
                fast = BertWordPieceTokenizer(str(vocab), lowercase=True)
                fast.enable_truncation(max_length=max_length)
                fast.enable_padding(
                    length=max_length, pad_id=self.vocab["[PAD]"], pad_token="[PAD]"
                )
                self._fast = fast
        self.backend = "tokenizers" if self._fast is not None else "python"

    def __len__(self) -> int:
        return len(self.vocab)

    # --- the pure-Python path -------------------------------------------------------------
    def basic_tokens(self, text: str) -> list[str]:
        chars = []
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or _is_control(ch):
                continue
            if _is_whitespace(ch):
                chars.append(" ")
            elif _is_cjk(cp):
                chars.append(f" {ch} ")
            else:
                chars.append(ch)
        out = []
        for word in "".join(chars).split():
            word = "".join(
                c
                for c in unicodedata.normalize("NFD", word.lower())
                if unicodedata.category(c) != "Mn"
            )
            piece = ""
            for ch in word:
                if _is_punctuation(ch):
                    if piece:
                        out.append(piece)
                    out.append(ch)
                    piece = ""
                else:
                    piece += ch
            if piece:
                out.append(piece)
        return out

    def wordpieces(self, word: str) -> list[str]:
        if len(word) > 100:
            return ["[UNK]"]
        pieces, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    break
                end -= 1
            if end == start:
                return ["[UNK]"]
            pieces.append(piece)
            start = end
        return pieces

    def _ids(self, text: str) -> list[int]:
        unk = self.vocab["[UNK]"]
        return [self.vocab.get(p, unk) for w in self.basic_tokens(text) for p in self.wordpieces(w)]

    def encode(
        self, text: str, pair: str | None = None, max_length: int | None = None
    ) -> list[int]:
        n = max_length or self.max_length
        if self._fast is not None and n == self.max_length:
            return list(self._fast.encode(text, pair).ids)
        a = self._ids(text)
        b = self._ids(pair) if pair is not None else None
        budget = n - (3 if b is not None else 2)
        if b is None:
            a = a[:budget]
        else:
            while len(a) + len(b) > budget:  # longest_first: trim the longer, the pair on ties
                if len(a) > len(b):
                    a.pop()
                else:
                    b.pop()
        cls, sep, pad = self.vocab["[CLS]"], self.vocab["[SEP]"], self.vocab["[PAD]"]
        ids = [cls, *a, sep] + ([*b, sep] if b is not None else [])
        return ids + [pad] * (n - len(ids))


def load_tokenizer(root: str | Path, backend: str = "auto", max_length: int = SEQ_LEN) -> WordPiece:
    """The WordPiece tokenizer of ``ROOT/text/vocab.txt``; its size must fit the spec's 30522."""
    tokenizer = WordPiece(vocab_path(root), backend=backend, max_length=max_length)
    if len(tokenizer) > VOCAB_SIZE:
        raise ValueError(f"vocab of {len(tokenizer)} pieces exceeds DABS's VOCAB_SIZE {VOCAB_SIZE}")
    return tokenizer


def _holdout(n: int, split: str, fraction: float = 0.05, seed: int = 0) -> np.ndarray:
    """Indices of ``train.tsv`` rows in our train (the rest) or valid (a seeded ``fraction``)."""
    order = np.random.default_rng(seed).permutation(n)
    k = max(1, round(n * fraction)) if n > 1 else 0
    return np.sort(order[:k] if split == "valid" else order[k:])


class _TextDataset(DomainDataset):
    SPECS: ClassVar[list[InputTokensSpec]] = SPECS


class WikiText103(_TextDataset):
    """One non-empty line of ``wiki.<split>.tokens`` per item, label 0 (pretraining only; DABS
    ``wikitext.py``). Lines are found by byte offset, so the 0.5 GB file is not held in memory."""

    FILES = {"train": "wiki.train.tokens", "valid": "wiki.valid.tokens", "test": "wiki.test.tokens"}

    def __init__(self, root: str | Path, split: str = "train", *, backend: str = "auto") -> None:
        super().__init__()
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.path = Path(root) / "text" / "wikitext103" / "wikitext-103" / self.FILES[split]
        if not self.path.is_file():
            raise FileNotFoundError(
                f"{self.path} not found: run data_scripts/dabs/text.py --only wikitext103"
            )
        self.tokenizer = load_tokenizer(root, backend)
        offsets, position = [], 0
        with open(self.path, "rb") as f:
            for line in f:
                if line.strip():
                    offsets.append(position)
                position += len(line)
        self.offsets = np.array(offsets, dtype=np.int64)
        self.skipped = 0
        self._file, self._pid = None, None

    def __len__(self) -> int:
        return len(self.offsets)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_file"] = None  # each DataLoader worker opens its own handle
        return state

    def __getitem__(self, index: int) -> tuple:
        if self._file is None or self._pid != os.getpid():
            # One handle per process: a handle inherited through fork shares its offset.
            self._file = open(self.path, "rb")  # noqa: SIM115 - kept open for the dataset's life
            self._pid = os.getpid()
        self._file.seek(int(self.offsets[index]))
        raw = self._file.readline()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            self.skipped += 1
            warnings.warn(
                f"{self.path}: undecodable line at byte {self.offsets[index]} ({err}); replaced",
                stacklevel=2,
            )
            text = raw.decode("utf-8", errors="replace")
        ids = torch.tensor(self.tokenizer.encode(text), dtype=torch.long)
        return (int(index), ids, 0)

    @staticmethod
    def num_classes() -> int:
        return 1  # DABS: no labels (NotImplementedError); 1 keeps a transfer head well-defined


@dataclass(frozen=True)
class _Task:
    folder: str  # the set's folder under ROOT/text and the task folder in its zip
    set_name: str
    test_file: str
    text_columns: tuple[str | int, ...]
    label_column: str | int
    labels: dict[str, float] | None  # label string -> value; None: float score (STS-B)
    header: bool = True
    num_classes: int = 1
    loss: str = "binary_cross_entropy"
    metric: str = "accuracy"


_NLI = {"entailment": 0, "not_entailment": 1}
_BIN = {"0": 0, "1": 1}

#: DABS conf/dataset/<name>.yaml (loss, metric) and src/datasets/text/glue.py (NUM_CLASSES,
#: input keys); label values as Hugging Face's ``glue`` builder maps the TSV strings.
GLUE_TASKS: dict[str, _Task] = {
    "cola": _Task("CoLA", "glue_cola", "dev.tsv", (3,), 1, _BIN, header=False, metric="pearson"),
    "sst2": _Task("SST-2", "glue_sst2", "dev.tsv", ("sentence",), "label", _BIN),
    "mrpc": _Task("MRPC", "glue_mrpc", "dev.tsv", ("#1 String", "#2 String"), "Quality", _BIN),
    "qqp": _Task("QQP", "glue_qqp", "dev.tsv", ("question1", "question2"), "is_duplicate", _BIN),
    "stsb": _Task(
        "STS-B",
        "glue_stsb",
        "dev.tsv",
        ("sentence1", "sentence2"),
        "score",
        None,
        loss="mse",
        metric="spearman",
    ),
    "mnli_matched": _Task(
        "MNLI",
        "glue_mnli",
        "dev_matched.tsv",
        ("sentence1", "sentence2"),
        "gold_label",
        {"entailment": 0, "neutral": 1, "contradiction": 2},
        num_classes=3,
        loss="cross_entropy",
    ),
    "mnli_mismatched": _Task(
        "MNLI",
        "glue_mnli",
        "dev_mismatched.tsv",
        ("sentence1", "sentence2"),
        "gold_label",
        {"entailment": 0, "neutral": 1, "contradiction": 2},
        num_classes=3,
        loss="cross_entropy",
    ),
    "qnli": _Task("QNLI", "glue_qnli", "dev.tsv", ("question", "sentence"), "label", _NLI),
    "rte": _Task("RTE", "glue_rte", "dev.tsv", ("sentence1", "sentence2"), "label", _NLI),
    "wnli": _Task("WNLI", "glue_wnli", "dev.tsv", ("sentence1", "sentence2"), "label", _BIN),
}


class GLUETask(_TextDataset):
    """One GLUE task; subclasses (see :func:`glue_dataset_class`) set ``TASK``. A row that
    lacks a field or has an unknown label is skipped with a warning and counted."""

    TASK: ClassVar[str] = ""

    def __init__(self, root: str | Path, split: str = "train", *, backend: str = "auto") -> None:
        super().__init__()
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        task = GLUE_TASKS[self.TASK]
        folder = Path(root) / "text" / task.set_name / task.folder
        path = folder / (task.test_file if split == "test" else "train.tsv")
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} not found: run data_scripts/dabs/text.py --only {task.set_name}"
            )
        self.tokenizer = load_tokenizer(root, backend)
        rows, self.skipped = self._read(path, task)
        if split != "test":
            rows = [rows[i] for i in _holdout(len(rows), split)]
        self.rows = rows

    def _read(self, path: Path, task: _Task) -> tuple[list[tuple[tuple[str, ...], float]], int]:
        rows, skipped, problems = [], 0, []
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            header = next(reader) if task.header else None
            columns = [
                header.index(c) if isinstance(c, str) else c
                for c in (*task.text_columns, task.label_column)
            ]
            for line, fields in enumerate(reader, start=2 if task.header else 1):
                try:
                    texts = tuple(fields[c] for c in columns[:-1])
                    raw = fields[columns[-1]]
                    label = float(raw) if task.labels is None else task.labels[raw]
                    if not all(texts):
                        raise ValueError("empty text")
                except (IndexError, KeyError, ValueError) as err:
                    skipped += 1
                    problems.append(f"line {line}: {type(err).__name__} {err}")
                    continue
                rows.append((texts, label))
        if skipped:
            warnings.warn(
                f"{path}: skipped {skipped} bad rows ({'; '.join(problems[:3])})", stacklevel=3
            )
        if skipped > len(rows):
            raise ValueError(f"{path}: most rows are bad ({skipped} of {skipped + len(rows)})")
        return rows, skipped

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> tuple:
        texts, label = self.rows[index]
        ids = torch.tensor(self.tokenizer.encode(*texts), dtype=torch.long)
        # DABS: CoLA's label is a float (BCE, Pearson), STS-B's a float score, the others ints.
        value = float(label) if self.TASK in ("cola", "stsb") else int(label)
        return (int(index), ids, value)

    @classmethod
    def num_classes(cls) -> int:
        return GLUE_TASKS[cls.TASK].num_classes


_GLUE_CLASSES: dict[str, type[GLUETask]] = {}
for _name in GLUE_TASKS:
    # Module-level classes (picklable by name, for DataLoader workers and DDP).
    _cls = type(
        f"GLUE_{_name}",
        (GLUETask,),
        {"TASK": _name, "__doc__": f"GLUE {_name} (DABS ``glue.py``).", "__module__": __name__},
    )
    globals()[_cls.__name__] = _GLUE_CLASSES[_name] = _cls


def glue_dataset_class(name: str) -> type[GLUETask]:
    """The dataset class of GLUE task ``name`` (a key of :data:`GLUE_TASKS`)."""
    if name not in GLUE_TASKS:
        raise ValueError(f"unknown GLUE task {name!r}; choose from {sorted(GLUE_TASKS)}")
    return _GLUE_CLASSES[name]
