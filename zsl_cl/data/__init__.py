"""Character data: the 35-class space and the sources that load binarised 28x28 images into it."""

from .cache import FORMAT_VERSION as CACHE_FORMAT_VERSION
from .classes import CLASS_NAMES, NUM_CLASSES, SPLITS, class_index, parse_classes
from .errors import DataError
from .femnist import FemnistSet, load_femnist
from .mnist import IdxSet, load_mnist
from .emnist import load_emnist
from .normalise import size_normalise, size_normalised
from .sources import (
    SOURCES,
    CharacterData,
    check_classes,
    default_cache_dir,
    default_data_dir,
    load_source,
    split_by_writer,
    split_stratified,
)

__all__ = [
    "CACHE_FORMAT_VERSION",
    "CLASS_NAMES",
    "NUM_CLASSES",
    "SOURCES",
    "SPLITS",
    "CharacterData",
    "DataError",
    "FemnistSet",
    "IdxSet",
    "check_classes",
    "size_normalise",
    "size_normalised",
    "class_index",
    "default_cache_dir",
    "default_data_dir",
    "load_emnist",
    "load_femnist",
    "load_mnist",
    "load_source",
    "parse_classes",
    "split_by_writer",
    "split_stratified",
]
