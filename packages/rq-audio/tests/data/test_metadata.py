import io

import pytest
from rq_audio.data.metadata import MetadataRow, read_metadata, write_metadata


def test_roundtrip_split_and_fold(tmp_path):
    rows = [MetadataRow("a.wav", "dog", "train"), MetadataRow("b.wav", "cat", "test")]
    write_metadata(tmp_path / "m.csv", rows)
    assert read_metadata(tmp_path / "m.csv") == rows
    folds = [MetadataRow("a.wav", "dog", None, 1), MetadataRow("b.wav", "cat", None, 10)]
    write_metadata(tmp_path / "f.csv", folds)
    assert read_metadata(tmp_path / "f.csv") == folds
    assert (tmp_path / "f.csv").read_text().splitlines()[0] == "file_name,label,fold"


@pytest.mark.parametrize(
    "text,message",
    [
        ("name,label,split\na,b,train\n", "file_name,label"),
        ("file_name,label\na,b\n", "'split'"),
        ("file_name,label,split\na,b,training\n", "not in"),
        ("file_name,label,fold\na,b,x\n", "not an integer"),
        ("file_name,label,split\n", "no rows"),
    ],
)
def test_bad_metadata_is_named(text, message):
    with pytest.raises(ValueError, match=message):
        read_metadata(io.StringIO(text))
