"""Character-level text data: tokenizer round trip, next-character windows, the 90/10 split,
and errors (missing file, unknown characters)."""

import os

import numpy as np
import pytest

from retrograd.datasets.text import CharDataset, CharTokenizer, load_text, load_text_splits
from retrograd.utils.data import DataLoader

DATA_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data")
SAMPLE = os.path.join(DATA_DIR, "tinyshakespeare_sample.txt")
SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data",
                      "tinyshakespeare", "input.txt")


def test_sample_is_the_start_of_tiny_shakespeare():
    text = load_text(SAMPLE)
    assert text.startswith("First Citizen:\n") and len(text) == 16573
    assert text.count("\n") == 600
    if os.path.exists(SHARED):
        with open(SHARED, encoding="utf-8") as f:
            assert f.read(len(text)) == text


def test_tokenizer_round_trips_the_sample_with_sorted_ids():
    text = load_text(SAMPLE)
    tok = CharTokenizer.from_text(text)
    assert tok.vocab_size == len(set(text)) == 58
    assert list(tok.chars) == sorted(set(text))
    ids = tok.encode(text)
    assert ids.dtype == np.int64 and ids.min() == 0 and ids.max() == tok.vocab_size - 1
    assert tok.decode(ids) == text
    assert tok.encode("A")[0] == tok.chars.index("A")


def test_tokenizer_handles_non_ascii_characters():
    tok = CharTokenizer.from_text("façade — 😀")
    assert tok.decode(tok.encode("😀ç")) == "😀ç"


def test_unknown_characters_are_named_in_the_error():
    tok = CharTokenizer.from_text("abc")
    with pytest.raises(ValueError, match=r"characters 'XZ' are not in the vocabulary"):
        tok.encode("aZbX")
    with pytest.raises(ValueError, match="characters '\u20ac' are not in"):
        tok.encode("\u20ac")
    with pytest.raises(ValueError, match=r"ids must be in \[0, 3\)"):
        tok.decode([0, 3])


def test_tokenizer_rejects_bad_vocabularies():
    with pytest.raises(ValueError, match="must not repeat"):
        CharTokenizer("aba")
    with pytest.raises(ValueError, match="non-empty string"):
        CharTokenizer("")


@pytest.mark.parametrize("stride", [1, 3, 4])
def test_windows_are_shifted_by_one_character(stride):
    ids = np.arange(20) * 7 % 11
    ds = CharDataset(ids, context=4, stride=stride)
    assert len(ds) == (20 - 4 - 1) // stride + 1
    x, y = ds.get_batch(np.arange(len(ds)))
    for i in range(len(ds)):
        start = i * stride
        assert x[i].tolist() == ids[start:start + 4].tolist()
        assert y[i].tolist() == ids[start + 1:start + 5].tolist()
    last_x, last_y = ds[len(ds) - 1]
    assert last_y.tolist() == y[-1].tolist() and last_x.tolist() == x[-1].tolist()
    assert ds[-1][0].tolist() == x[-1].tolist()


def test_every_window_fits_in_the_text():
    ds = CharDataset(np.arange(10), context=9)
    assert len(ds) == 1
    with pytest.raises(IndexError, match="out of range"):
        ds[1]
    with pytest.raises(ValueError, match="too few"):
        CharDataset(np.arange(9), context=9)


def test_split_is_90_10_contiguous_and_covers_the_text():
    train, val, tok = load_text_splits(SAMPLE, context=32)
    ids = tok.encode(load_text(SAMPLE))
    cut = int(round(len(ids) * 0.9))
    assert np.array_equal(train.ids, ids[:cut]) and np.array_equal(val.ids, ids[cut:])
    assert len(train) == cut - 32 and train.stride == 1
    # validation windows do not overlap: each validation character is scored once
    assert val.stride == 32 and len(val) == (len(ids) - cut - 33) // 32 + 1


def test_loader_batches_the_windows_in_one_fancy_index():
    train, _, _ = load_text_splits(SAMPLE, context=16)
    x, y = next(iter(DataLoader(train, batch_size=5, shuffle=True, seed=0)))
    assert x.shape == (5, 16) and y.shape == (5, 16)
    assert np.array_equal(x.numpy()[:, 1:], y.numpy()[:, :-1])


def test_missing_empty_and_too_short_files_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file .*nothing.txt"):
        load_text_splits(str(tmp_path / "nothing.txt"), context=8)
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(ValueError, match="is empty"):
        load_text(str(tmp_path / "empty.txt"))
    (tmp_path / "short.txt").write_text("abcdefghij" * 5)
    with pytest.raises(ValueError, match="too few for a 90%/10% split with context 8"):
        load_text_splits(str(tmp_path / "short.txt"), context=8)


def test_a_directory_a_binary_file_and_an_unreadable_file_name_the_path(tmp_path, monkeypatch):
    with pytest.raises(IsADirectoryError, match="text data: '.*' is a directory"):
        load_text(str(tmp_path))
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"ok\xff\xfe")
    with pytest.raises(ValueError, match=r"text data: '.*binary.txt' is not UTF-8 text \(byte "
                                         r"0xff at offset 2\)"):
        load_text(str(binary))

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(binary))
    monkeypatch.setattr("builtins.open", refuse)
    with pytest.raises(PermissionError, match=r"text data: cannot read '.*binary.txt': "
                                              r"Permission denied"):
        load_text(str(binary))
