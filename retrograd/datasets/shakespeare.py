"""The text corpus shipped inside the package: the first 399,862 characters of Tiny
Shakespeare (William Shakespeare's plays, public domain; the collection put together by Andrej
Karpathy for char-rnn, repository ``karpathy/char-rnn``, ``data/tinyshakespeare/input.txt``),
cut at a blank line. ``data/README.md`` beside it gives the source, the license, the cut and
the checksum.

It is the default data of ``retrograd train --model gpt`` (``--data shakespeare``), so a
language model trains offline with nothing to download.
"""

import os

from retrograd.datasets.text import load_text

__all__ = ["NAME", "shakespeare_path", "load_shakespeare"]

NAME = "shakespeare"  # the --data name of the corpus

_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "shakespeare.txt")


def shakespeare_path():
    """The path of the shipped corpus, a UTF-8 (ASCII) text file.

    Example:
        >>> os.path.basename(shakespeare_path())
        'shakespeare.txt'
    """
    return _PATH


def load_shakespeare():
    """The shipped corpus as one string (399,862 characters, 63 distinct).

    Example:
        >>> text = load_shakespeare()
        >>> text.splitlines()[0], len(text)
        ('First Citizen:', 399862)
    """
    return load_text(_PATH)
