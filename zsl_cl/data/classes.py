"""The 35-class character space: digits 0-9 and uppercase A-Z, with 0 and O merged."""

from __future__ import annotations

import string

__all__ = ["CLASS_NAMES", "NUM_CLASSES", "SPLITS", "class_index", "parse_classes"]

# Class i is CLASS_NAMES[i]. Digit 0 and letter O are one class, named "0",
# because the two are indistinguishable in most handwriting.
CLASS_NAMES: tuple[str, ...] = tuple(string.digits) + tuple(c for c in string.ascii_uppercase if c != "O")
NUM_CLASSES = len(CLASS_NAMES)  # 35

# The study's two sets of unseen classes.
SPLITS: dict[str, str] = {
    "R0": "2679ELVWY",
    "R1": "01234678ABDEHIJKLMPVWXY",
}

_INDEX = {name: i for i, name in enumerate(CLASS_NAMES)}
_INDEX["O"] = _INDEX["0"]


def class_index(char: str) -> int:
    """Return the class index of one character; "O" maps to the class of "0"."""
    try:
        return _INDEX[char]
    except KeyError:
        raise ValueError(
            f"unknown character {char!r}: use a digit 0-9 or an uppercase letter A-Z"
        ) from None


def parse_classes(chars: str) -> list[int]:
    """Parse a string such as "2679ELVWY" into class indices, rejecting duplicates.

    Lowercase letters are rejected rather than folded to uppercase, because
    handwritten lowercase letters are different shapes, not the same classes.
    """
    indices: list[int] = []
    for char in chars:
        if char.islower():
            raise ValueError(
                f"invalid class {char!r} in {chars!r}: lowercase letters are not classes; "
                f"write {char.upper()!r} for the uppercase letter"
            )
        index = class_index(char)
        if index in indices:
            raise ValueError(
                f"duplicate class {char!r} in {chars!r} (0 and O are the same class): list each class once"
            )
        indices.append(index)
    return indices
