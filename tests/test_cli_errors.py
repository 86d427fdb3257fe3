"""Bad input to the CLI: one line on stderr naming the value and the fix, exit status 1, no output file.

The table runs each case in-process through typer's CliRunner, so torch and
Avalanche are imported once. A few cases run the installed command in a
subprocess as well, to check the real exit status and stderr. Every expected
message is also looked up in docs/troubleshooting.md.

Messages are templates. ``{tmp}`` is the test's folder and ``{shared}`` the
real data folder. Other fields are filled from the running code, such as the
registered solvers, and the fields named in ``Case.volatile`` match any text.
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
import typer
from rich.console import Console
from typer.testing import CliRunner

from zsl_cl.cli import app
from zsl_cl.commands.errors import user_errors
from zsl_cl.config import SAEConfig
from zsl_cl.data.classes import CLASS_NAMES
from zsl_cl.plugin_manager import collect_components, get_plugin_manager
from zsl_cl.streams import plan_stream

DOC = Path(__file__).resolve().parents[1] / "docs" / "troubleshooting.md"
ALL_CLASSES = "".join(CLASS_NAMES)

# ---------------------------------------------------------------- data written by the tests


def write_femnist(folder: Path, writers: int = 5, skip: tuple[int, ...] = ()) -> Path:
    """Write one LEAF shard where each writer draws two noisy copies of a fixed pattern per class.

    ``skip`` lists byclass labels that no writer draws. Returns the shard's path.
    """
    rng = np.random.default_rng(0)
    patterns = rng.random((36, 784)) < 0.3  # byclass labels 0-9 digits, 10-35 'A'-'Z'
    users = {}
    for writer in range(writers):
        pixels, labels = [], []
        for label in range(36):
            if label == 24 or label in skip:  # byclass 24 is 'O', the same class as '0'
                continue
            for _ in range(2):
                ink = patterns[label] ^ (rng.random(784) < 0.05)
                pixels.append(np.where(ink, 0.0, 1.0).tolist())
                labels.append(label)
        users[f"writer{writer}"] = {"x": pixels, "y": labels}
    shard = {"users": list(users), "num_samples": [len(u["y"]) for u in users.values()], "user_data": users}
    path = folder / "femnist" / "shard.json.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(json.dumps(shard).encode()))
    return path


def write_idx(path: Path, array: np.ndarray, magic: int | None = None) -> Path:
    """Write a uint8 array as an IDX file with its dimensions in the header."""
    array = np.asarray(array, dtype=np.uint8)
    magic = 0x0800 + array.ndim if magic is None else magic
    header = magic.to_bytes(4, "big") + b"".join(size.to_bytes(4, "big") for size in array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + array.tobytes())
    return path


def write_idx_pair(folder: Path, images_name: str, labels_name: str, labels: list[int]) -> tuple[Path, Path]:
    images = np.zeros((len(labels), 28, 28), dtype=np.uint8)
    for i, label in enumerate(labels):
        images[i, 2:26, label % 28] = 255
    return write_idx(folder / images_name, images), write_idx(folder / labels_name, np.array(labels))


def write_mnist_emnist(folder: Path, emnist_test_labels: list[int]) -> None:
    """Write MNIST and EMNIST byclass train/test files: every digit and letter, two samples each."""
    digits = [d for d in range(10) for _ in range(2)]
    letters = [label for label in range(10, 36) for _ in range(2)]
    mnist = folder / "MNIST" / "raw"
    write_idx_pair(mnist, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", digits)
    write_idx_pair(mnist, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", digits)
    emnist = folder / "EMNIST" / "raw"
    write_idx_pair(emnist, "emnist-byclass-train-images-idx3-ubyte", "emnist-byclass-train-labels-idx1-ubyte", letters)
    write_idx_pair(emnist, "emnist-byclass-test-images-idx3-ubyte", "emnist-byclass-test-labels-idx1-ubyte", emnist_test_labels)


def write_truncated_gzip(tmp: Path) -> None:
    images, labels = write_idx_pair(tmp / "digits" / "MNIST" / "raw", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", [1, 2, 3])
    images.with_name(images.name + ".gz").write_bytes(gzip.compress(images.read_bytes())[:-20])
    images.unlink()


def write_bad_magic(tmp: Path) -> None:
    images, _ = write_idx_pair(tmp / "digits" / "MNIST" / "raw", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", [1, 2, 3])
    write_idx(images, np.zeros((3, 28, 28)), magic=0x0903)


def write_bad_count(tmp: Path) -> None:
    images, _ = write_idx_pair(tmp / "digits" / "MNIST" / "raw", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", [1, 2, 3])
    images.write_bytes(images.read_bytes()[:-100])


def write_invalid_json(tmp: Path) -> None:
    path = tmp / "shards" / "femnist" / "shard.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(b'{"users": ["w1"], "user_data": {"w1": {"x": [[0.1, ')


def write_truncated_shard(tmp: Path) -> None:
    shard = write_femnist(tmp / "shards", writers=1)
    shard.write_bytes(shard.read_bytes()[:-50])


def write_local_plugins(tmp: Path) -> None:
    """Write a plugin module with a solver that returns zeros, one that returns NaN, and a hook that breaks the backbone."""
    (tmp / "plugins").mkdir()
    (tmp / "plugins" / f"broken_{tmp.name.replace('-', '_')}.py").write_text(textwrap.dedent('''
        import torch
        from zsl_cl.hookspecs import hookimpl


        class ZeroSolver:
            def __call__(self, a, b, c):
                return torch.zeros_like(c)


        class NanSolver:
            def __call__(self, a, b, c):
                return torch.full_like(c, float("nan"))


        @hookimpl
        def register_solvers(register):
            register("zeros", ZeroSolver, "returns W = 0, whose relative residual is 1")
            register("nan", NanSolver, "returns NaN")


        class NanBackbone:
            @hookimpl
            def after_backbone_trained(self, strategy, model):
                model.features[0].weight.data.fill_(float("nan"))
    '''))


def plugin_module(tmp: Path) -> str:
    return f"broken_{tmp.name.replace('-', '_')}"


def make_file(tmp: Path) -> None:
    (tmp / "notes.txt").write_text("a regular file where a folder is expected")


def make_checkpoint(tmp: Path) -> None:
    (tmp / "checkpoint").mkdir()
    (tmp / "checkpoint" / "checkpoint.json").write_text("{}")


# ---------------------------------------------------------------- the table


@dataclass(frozen=True)
class Case:
    """One bad command line and the exact stderr line it must produce."""

    id: str
    args: list[str]
    message: str
    setup: Callable[[Path], None] | None = None
    command: str = "evaluate"
    volatile: tuple[str, ...] = ()
    patch: str | None = None  # a name in PATCHES, for cases that need a mocked component
    trains: bool = False  # the case fails only after experience 0 trains on the small data
    needs_cpu_only: bool = False
    plugins: bool = False  # load the solvers and the hook of write_local_plugins
    known_issue: str | None = None  # the reason the case fails today; it runs as a strict xfail


R0_NEW = len(plan_stream(split="R0").new_classes)
SETTING_NAMES = ", ".join(field.name for field in fields(SAEConfig))

CASES = [
    # ---- unknown names
    Case("unknown-stream", ["--stream", "nope"], "Error: unknown stream 'nope': choose one of emnist-incremental"),
    # Square brackets in a value are printed as typed, not read as rich markup.
    Case("unknown-stream-brackets", ["--stream", "[b]nope"], "Error: unknown stream '[b]nope': choose one of emnist-incremental"),
    Case("unknown-source", ["--source", "nope"], "Error: unknown data source 'nope': use one of mnist+emnist, femnist, mnist, emnist"),
    Case("unknown-split", ["--split", "R2"], "Error: unknown split 'R2': choose one of R0, R1"),
    Case("unknown-preset", ["--preset", "fast"], "Error: unknown preset 'fast': choose one of paper, default"),
    Case(
        "unknown-solver",
        ["--solver", "nope"],
        "Error: unknown solver 'nope': choose one of {solvers}, or load a plugin that provides it (see zsl-cl plugins)",
    ),
    Case(
        "unknown-distance",
        ["--distance", "nope"],
        "Error: unknown distance 'nope': choose one of {distances}, or load a plugin that provides it (see zsl-cl plugins)",
    ),
    Case("unknown-device", ["--device", "tpu"], "Error: unknown device 'tpu': use cpu or cuda"),
    Case(
        "unknown-plugin-module",
        ["--plugin", "no_such_module"],
        "Error: cannot import module 'no_such_module' of plugin spec 'no_such_module' from --plugin "
        "(ModuleNotFoundError: No module named 'no_such_module'): install its package or add its folder to PYTHONPATH",
        command="plugins",
    ),
    Case(
        "unknown-plugin-attribute",
        ["--plugin", "zsl_cl.hookspecs:nothing"],
        "Error: module 'zsl_cl.hookspecs' has no attribute 'nothing', named in plugin spec 'zsl_cl.hookspecs:nothing' "
        "from --plugin: check the name after the colon",
        command="plugins",
    ),
    # ---- the data folder
    Case(
        "data-dir-missing-femnist",
        ["--data-dir", "{tmp}/missing"],
        "Error: data folder {tmp}/missing not found: pass --data-dir pointing at the folder that contains the data",
    ),
    Case(
        "data-dir-missing-mnist-emnist",
        ["--source", "mnist+emnist", "--data-dir", "{tmp}/missing"],
        "Error: data folder {tmp}/missing not found: pass --data-dir pointing at the folder that contains the data, or allow download",
    ),
    Case(
        "data-dir-empty-femnist",
        ["--data-dir", "{tmp}"],
        "Error: no LEAF FEMNIST shards (*.json, *.json.gz) found under {tmp}: "
        "pass --data-dir pointing at a folder that contains LEAF FEMNIST shards (*.json or *.json.gz)",
    ),
    Case(
        "data-dir-empty-mnist",
        ["--source", "mnist+emnist", "--data-dir", "{tmp}"],
        "Error: no complete MNIST images/labels pair found in {tmp}/MNIST/raw (looked for train-images-idx3-ubyte[.gz], "
        "train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]): "
        "pass --data-dir pointing at a folder that contains MNIST/raw/, or allow download",
    ),
    Case(
        "data-dir-without-emnist",
        ["--source", "mnist+emnist", "--data-dir", "{shared}"],
        "Error: no complete EMNIST images/labels pair found in {shared}/EMNIST/raw (looked for "
        "emnist-byclass-train-images-idx3-ubyte[.gz], emnist-byclass-train-labels-idx1-ubyte[.gz], "
        "emnist-byclass-test-images-idx3-ubyte[.gz], emnist-byclass-test-labels-idx1-ubyte[.gz]): "
        "pass --data-dir pointing at a folder that contains EMNIST/raw/, allow download with --download, or use --source femnist with LEAF FEMNIST shards",
    ),
    Case(
        "data-dir-is-file",
        ["--data-dir", "{tmp}/notes.txt"],
        "Error: data folder {tmp}/notes.txt is not a folder: pass --data-dir pointing at the folder that contains the data",
        setup=make_file,
    ),
    Case(
        "truncated-gzip",
        ["--source", "mnist", "--data-dir", "{tmp}/digits"],
        "Error: truncated or corrupt gzip file {tmp}/digits/MNIST/raw/t10k-images-idx3-ubyte.gz "
        "(Compressed file ended before the end-of-stream marker was reached): replace it with an intact copy",
        setup=write_truncated_gzip,
    ),
    Case(
        "wrong-idx-magic",
        ["--source", "mnist", "--data-dir", "{tmp}/digits"],
        "Error: invalid IDX magic number 0x00000903 in {tmp}/digits/MNIST/raw/t10k-images-idx3-ubyte "
        "(expected 0x00000803 for an image file): replace it with an intact MNIST-format file",
        setup=write_bad_magic,
    ),
    Case(
        "idx-bad-count",
        ["--source", "mnist", "--data-dir", "{tmp}/digits"],
        "Error: IDX image file {tmp}/digits/MNIST/raw/t10k-images-idx3-ubyte declares 3 items (2368 bytes) but has 2268 bytes: "
        "the file is truncated or corrupt, replace it with an intact copy",
        setup=write_bad_count,
    ),
    Case(
        "invalid-json",
        ["--data-dir", "{tmp}/shards"],
        "Error: invalid JSON in FEMNIST shard {tmp}/shards/femnist/shard.json "
        "(Expecting value: line 1 column 52 (char 51)): replace it with an intact copy",
        setup=write_invalid_json,
    ),
    Case(
        "truncated-shard",
        ["--data-dir", "{tmp}/shards"],
        "Error: failed to read FEMNIST shard {tmp}/shards/femnist/shard.json.gz "
        "(Compressed file ended before the end-of-stream marker was reached): replace it with an intact copy",
        setup=write_truncated_shard,
    ),
    # ---- --unseen
    Case("unseen-unknown-character", ["--unseen", "2#"], "Error: unknown character '#': use a digit 0-9 or an uppercase letter A-Z"),
    Case(
        "unseen-duplicate",
        ["--unseen", "27E2"],
        "Error: duplicate class '2' in '27E2' (0 and O are the same class): list each class once",
    ),
    Case(
        "unseen-zero-and-o",
        ["--unseen", "0O"],
        "Error: duplicate class 'O' in '0O' (0 and O are the same class): list each class once",
    ),
    Case(
        "unseen-every-class",
        ["--unseen", ALL_CLASSES],
        f"Error: --unseen '{ALL_CLASSES}' lists every class: leave at least one base class to train on",
    ),
    Case(
        "unseen-empty",
        ["--unseen", ""],
        "Error: --unseen is empty: list at least one character, for example --unseen 2679ELVWY",
    ),
    Case(
        "unseen-lowercase",
        ["--unseen", "27e"],
        "Error: invalid class 'e' in '27e': lowercase letters are not classes; write 'E' for the uppercase letter",
    ),
    Case(
        "unseen-and-split",
        ["--unseen", "27", "--split", "R1"],
        "Error: --unseen and --split both choose the new classes: pass only one of them",
    ),
    # ---- numbers out of range
    Case(
        "classes-per-exp-zero",
        ["--classes-per-exp", "0"],
        f"Error: invalid --classes-per-exp 0: use a value from 1 to {R0_NEW}, the number of new classes",
    ),
    Case(
        "classes-per-exp-too-many",
        ["--classes-per-exp", str(R0_NEW + 1)],
        f"Error: invalid --classes-per-exp {R0_NEW + 1}: use a value from 1 to {R0_NEW}, the number of new classes",
    ),
    Case("k-zero", ["--k", "0"], "Error: invalid k 0: use k >= 1"),
    Case("k-negative", ["--k", "-4"], "Error: invalid k -4: use k >= 1"),
    Case("lambda-negative", ["--lambda", "-0.5"], "Error: invalid lambda -0.5: use lambda >= 0"),
    Case("epochs-zero", ["--epochs", "0"], "Error: invalid --epochs 0: use 1 or more"),
    # ---- --set NAME=VALUE
    Case("set-without-value", ["--set", "augment"], "Error: invalid --set 'augment': use NAME=VALUE with NAME one of " + SETTING_NAMES),
    Case("set-unknown-name", ["--set", "colour=red"], "Error: invalid --set 'colour=red': use NAME=VALUE with NAME one of " + SETTING_NAMES),
    Case("set-bad-bool", ["--set", "augment=maybe"], "Error: invalid --set augment=maybe: use true or false (yes/no and 1/0 work too)"),
    Case("set-fractional-int", ["--set", "epochs=2.5"], "Error: invalid --set epochs=2.5: use a whole number"),
    Case("set-infinite", ["--set", "lr=inf"], "Error: invalid --set lr=inf: use a finite number"),
    Case("set-bad-number", ["--set", "feature_weight=half"], "Error: invalid --set feature_weight=half: use a number"),
    Case("set-out-of-range", ["--set", "feature_weight=2"], "Error: invalid feature_weight 2.0: use a value from 0 to 1"),
    Case("set-unknown-head", ["--set", "head=arc"], "Error: invalid head 'arc': use one of linear, cosine"),
    Case("set-reproduce", ["--set", "reference_views=-2"], "Error: invalid reference_views -2: use 0 or more", command="reproduce"),
    Case("set-compare", ["--set", "calibration=test"], "Error: invalid calibration 'test': use one of none, validation", command="compare"),
    Case(
        "transductive-with-expand-head",
        ["--transductive", "--expand-head"],
        "Error: --transductive refines references without labels, which the grown head cannot use: drop --expand-head or --transductive",
    ),
    Case("shots-zero", ["--shots", "0"], "Error: invalid --shots 0: use 1 or more"),
    Case(
        "shots-more-than-samples",
        ["--shots", "50"],
        "Error: class '{first_new}' of experience 1 has 8 training samples, fewer than --shots 50: use --shots 8 or fewer",
    ),
    Case("seed-negative", ["--seed", "-1"], "Error: invalid seed -1: use a seed >= 0"),
    Case(
        "base-classes-all",
        ["--base-classes", "35"],
        "Error: invalid --base-classes 35: use a value from 1 to 34",
    ),
    # ---- --output
    Case(
        "output-folder-missing",
        ["--output", "{tmp}/missing/out.json"],
        "Error: cannot write --output {tmp}/missing/out.json: folder {tmp}/missing does not exist; create it first",
    ),
    Case(
        "output-under-file",
        ["--output", "{tmp}/notes.txt/out.json"],
        "Error: cannot write --output {tmp}/notes.txt/out.json: {tmp}/notes.txt is a file, not a folder; choose a path inside a folder",
        setup=make_file,
    ),
    Case(
        "output-is-folder",
        ["--output", "{tmp}"],
        "Error: cannot write --output {tmp}: it is a folder; give a file name such as {tmp}/results.json",
    ),
    # ---- the device
    Case(
        "cuda-unavailable",
        ["--device", "cuda"],
        "Error: --device cuda requested but CUDA is not available here: use --device cpu",
        needs_cpu_only=True,
    ),
    # ---- classes without data
    Case(
        "class-without-training-data",
        ["--source", "mnist", "--data-dir", "{shared}"],
        "Error: class 'A' has no training data in source 'mnist': choose a source that holds every class, or leave that class out",
    ),
    Case(
        "class-without-test-data",
        ["--source", "mnist+emnist", "--data-dir", "{tmp}/data"],
        "Error: class 'Z' has no test data in source 'mnist+emnist': choose a source that holds every class, or leave that class out",
        setup=lambda tmp: write_mnist_emnist(tmp / "data", [label for label in range(10, 35) for _ in range(2)]),
    ),
    # ---- checkpoints
    Case(
        "resume-without-checkpoint-dir",
        ["--resume"],
        "Error: --resume continues a run from its --checkpoint-dir: pass --checkpoint-dir as well",
    ),
    Case(
        "checkpoint-dir-holds-checkpoint",
        ["--checkpoint-dir", "{tmp}/checkpoint"],
        "Error: --checkpoint-dir {tmp}/checkpoint already contains a checkpoint: pass --resume to continue that run, or choose an empty folder",
        setup=make_checkpoint,
    ),
    Case(
        "checkpoint-dir-under-file",
        ["--checkpoint-dir", "{tmp}/notes.txt/checkpoint"],
        "Error: cannot create --checkpoint-dir {tmp}/notes.txt/checkpoint (Not a directory): choose a folder that can be created and written",
        setup=make_file,
    ),
    # ---- failures after training: the Sylvester solve and non-finite features
    Case(
        "sylvester-inaccurate",
        ["--solver", "zeros"],
        "Error: the Sylvester solve is inaccurate (relative residual 1.00e+00 > 1e-06): "
        "the system is singular or badly conditioned; raise lambda or try --solver scipy",
        trains=True,
        plugins=True,
    ),
    Case(
        "sylvester-nan",
        ["--solver", "nan"],
        "Error: the Sylvester solve returned NaN or Inf: check the features for NaN/Inf or raise lambda",
        trains=True,
        plugins=True,
    ),
    Case(
        "sylvester-singular",
        ["--lambda", "0", "--solver", "eigh"],
        "Error: Sylvester equation A W + W B = C is singular: the smallest |la_i + lb_j| is {smallest}, at most {ratio} x the largest "
        "({largest}). Use λ > 0 and check that X has rank d (at least d samples, no collinear features) so that B = λ X Xᵀ is positive definite",
        volatile=("smallest", "ratio", "largest"),
        trains=True,
    ),
    Case(
        "features-nan-experience-0",
        [],
        "Error: a linear solve failed in experience 0 ({linalg_error}): "
        "the CNN features contain NaN or Inf; rerun with another --seed or fewer --epochs",
        volatile=("linalg_error",),
        patch="nan-base-features",
        trains=True,
    ),
    Case(
        "features-nan-later-experience",
        ["--plugin", "{plugin}:NanBackbone"],
        "Error: the CNN features of the test data of experience 0 contain NaN or Inf, so the backbone has diverged "
        "or was altered: rerun with another --seed or fewer --epochs, and check any --plugin that changes the model",
        trains=True,
        plugins=True,
    ),
    # ---- zsl-cl compare
    Case(
        "compare-unknown-strategy",
        ["--strategies", "sae,nope"],
        "Error: unknown strategy 'nope': choose from sae, ncm, naive, replay, ewc, lwf, si, icarl, gdumb, slda, cumulative, or all",
        command="compare",
    ),
    Case("compare-unknown-budget", ["--budget", "half"], "Error: unknown budget 'half': choose one of one-shot, full", command="compare"),
    Case("compare-unknown-executor", ["--executor", "nope"], "Error: unknown executor 'nope': choose one of local, ray", command="compare"),
    Case("compare-seed-negative", ["--seeds", "0,-1"], "Error: invalid --seeds '0,-1': seed -1 is negative; use seeds >= 0", command="compare"),
    Case("compare-jobs-zero", ["--jobs", "0"], "Error: invalid --jobs 0: use 1 or more parallel jobs", command="compare"),
    Case(
        "compare-unseen-lowercase",
        ["--unseen", "27e"],
        "Error: invalid class 'e' in '27e': lowercase letters are not classes; write 'E' for the uppercase letter",
        command="compare",
    ),
    Case(
        "compare-output-dir-is-file",
        ["--output-dir", "{tmp}/notes.txt"],
        "Error: cannot write --output-dir {tmp}/notes.txt: it is a file; give a folder",
        setup=make_file,
        command="compare",
    ),
    Case(
        "compare-cuda-unavailable",
        ["--device", "cuda"],
        "Error: --device cuda requested but CUDA is not available here: use --device cpu",
        command="compare",
        needs_cpu_only=True,
    ),
    # ---- zsl-cl reproduce
    Case("reproduce-unknown-run", ["--run", "R2"], "Error: unknown run 'R2': choose one of R0, R1", command="reproduce"),
    Case(
        "reproduce-unknown-decoder",
        ["--figures", "--decoder", "nope"],
        "Error: unknown decoder 'nope': choose one of {decoders}, or load a plugin that provides it (see zsl-cl plugins)",
        command="reproduce",
    ),
    Case("reproduce-draws-zero", ["--draws", "0"], "Error: invalid --draws 0: use 1 or more reference draws", command="reproduce"),
    Case("reproduce-seed-negative", ["--seeds", "-1"], "Error: invalid --seeds -1: use seeds >= 0", command="reproduce"),
    Case(
        "reproduce-output-dir-under-file",
        ["--output-dir", "{tmp}/notes.txt/out"],
        "Error: cannot create --output-dir {tmp}/notes.txt/out (Not a directory): choose a writable folder",
        setup=make_file,
        command="reproduce",
    ),
    Case(
        "reproduce-unknown-source",
        ["--source", "nope"],
        "Error: unknown data source 'nope': use one of mnist+emnist, femnist, mnist, emnist",
        command="reproduce",
    ),
    Case(
        "reproduce-data-dir-missing",
        ["--data-dir", "{tmp}/missing"],
        "Error: data folder {tmp}/missing not found: pass --data-dir pointing at the folder that contains the data",
        command="reproduce",
    ),
]


# ---------------------------------------------------------------- running a case


@pytest.fixture(scope="module")
def small_data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("small-data")
    write_femnist(folder)
    return folder


@pytest.fixture(scope="module")
def cache_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache-home")


@pytest.fixture
def cli_env(monkeypatch, cache_home):
    """Point the parsed-data cache at a test folder and clear variables that choose data or plugins."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("ZSL_CL_DATA", raising=False)


def nan_base_features(monkeypatch) -> None:
    """Make feature extraction return NaN in one entry, as a diverged backbone would."""
    from zsl_cl.training.strategy import SAEStrategy

    original = SAEStrategy.extract_features

    def extract_with_nan(self, dataset):
        features, labels = original(self, dataset)
        features[0, 0] = float("nan")
        return features, labels

    monkeypatch.setattr(SAEStrategy, "extract_features", extract_with_nan)


PATCHES = {"nan-base-features": nan_base_features}


class TrainingStarted(Exception):
    """Raised when a case that must fail before training reaches the training loop."""


def forbid_training(monkeypatch) -> None:
    from zsl_cl.training.strategy import SAEStrategy

    def train(self, *args, **kwargs):
        raise TrainingStarted("the command started training before it reported the bad input")

    monkeypatch.setattr(SAEStrategy, "train", train)


def component_names(kind: str) -> str:
    registries = collect_components(get_plugin_manager())
    return ", ".join(registries.get(kind).names())


def command_line(case: Case, tmp: Path, small_data: Path) -> list[str]:
    """Return the command and the options every case of it shares; a case's own options come after and win."""
    data = ["--source", "femnist", "--data-dir", str(small_data), "--no-download", "--epochs", "1"]
    if case.command == "plugins":
        return ["plugins"]
    if case.command == "compare":
        return ["compare", *data, "--seeds", "0", "--strategies", "sae", "--output-dir", str(tmp / "out")]
    if case.command == "reproduce":
        return ["reproduce", *data, "--no-figures", "--output-dir", str(tmp / "out")]
    return ["evaluate", *data, "--quiet", "--output", str(tmp / "out.json")]


def output_files(tmp: Path) -> list[Path]:
    """Return the files in the output paths of command_line: out.json, its temporary files, and the out/ folder."""
    found = [path for path in tmp.glob("*out.json*")]
    if (tmp / "out").is_dir():
        found += [path for path in (tmp / "out").rglob("*") if path.is_file()]
    return found


def fill(template: str, values: dict, volatile: tuple[str, ...]) -> str:
    """Return a regex that matches ``template`` with ``values`` filled in and the volatile fields as any text."""
    pattern = re.escape(template)
    for name in volatile:
        pattern = pattern.replace(re.escape("{" + name + "}"), ".+?")
    for name, value in values.items():
        pattern = pattern.replace(re.escape("{" + name + "}"), re.escape(value))
    return pattern


def case_values(tmp: Path, shared: Path) -> dict:
    return {
        "tmp": str(tmp),
        "shared": str(shared),
        "plugin": plugin_module(tmp),
        "solvers": component_names("solver"),
        "distances": component_names("distance"),
        "decoders": component_names("decoder"),
        # The small data has 2 samples per class and writer, and 4 of its 5 writers are in training.
        "first_new": CLASS_NAMES[min(plan_stream(split="R0").experiences[1])],
    }


def case_params() -> list:
    params = []
    for case in CASES:
        marks = [pytest.mark.xfail(strict=True, reason=case.known_issue)] if case.known_issue else []
        if case.command == "compare" and importlib.util.find_spec("zsl_cl.commands.compare") is None:
            marks.append(pytest.mark.skip(reason="this build has no compare command"))
        params.append(pytest.param(case, id=case.id, marks=marks))
    return params


@pytest.mark.parametrize("case", case_params())
def test_bad_input_one_line(case: Case, tmp_path: Path, small_data: Path, shared_data: Path, cli_env, monkeypatch) -> None:
    if case.needs_cpu_only and torch.cuda.is_available():
        pytest.skip("CUDA is available here, so --device cuda is valid")
    if case.setup is not None:
        case.setup(tmp_path)
    if case.plugins:
        write_local_plugins(tmp_path)
        monkeypatch.syspath_prepend(str(tmp_path / "plugins"))
        monkeypatch.setenv("ZSL_CL_PLUGINS", plugin_module(tmp_path))
    if case.patch is not None:
        PATCHES[case.patch](monkeypatch)
    if not case.trains:
        forbid_training(monkeypatch)
    values = case_values(tmp_path, shared_data)
    args = command_line(case, tmp_path, small_data) + [arg.format(**values) for arg in case.args]

    result = CliRunner().invoke(app, args)

    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert re.fullmatch(fill(case.message, values, case.volatile), lines[0]), lines[0]
    assert output_files(tmp_path) == []


# ---------------------------------------------------------------- the documentation


def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


# The values that docs/troubleshooting.md shows in place of each field.
DOC_VALUES = {
    "tmp": "/home/me/run",
    "shared": "/home/me/data",
    "plugin": "my_plugins",
    "solvers": "eigh, scipy",
    "distances": "cosine, euclidean, mahalanobis, zscore-cosine",
    "decoders": "linear, tconv",
    "first_new": "7",
    "smallest": "2.256e-16",
    "ratio": "5.7e-14",
    "largest": "4.242e+03",
    "linalg_error": "linalg.cholesky: The factorization could not be completed because the input is not positive-definite "
    "(the leading minor of order 1 is not positive-definite)",
}


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_troubleshooting_lists_message(case: Case) -> None:
    message = case.message.format(**DOC_VALUES)
    assert message in doc_text()


def test_troubleshooting_lists_interrupt() -> None:
    assert "Interrupted: stopped before the run finished, so /home/me/run/out.json was not written" in doc_text()


# ---------------------------------------------------------------- user_errors alone


def printed_by_user_errors(error: BaseException, interrupted=None) -> tuple[int, str]:
    """Raise ``error`` inside user_errors and return the exit code and what it printed."""
    stream = io.StringIO()
    with pytest.raises(typer.Exit) as exit_info:
        with user_errors(Console(file=stream, width=80), interrupted=interrupted):
            raise error
    return exit_info.value.exit_code, stream.getvalue()


def test_user_errors_os_error_one_line() -> None:
    code, text = printed_by_user_errors(OSError(28, "No space left on device"))
    assert code == 1
    assert text == "Error: [Errno 28] No space left on device: check the file system and rerun\n"


def test_user_errors_folds_line_breaks() -> None:
    code, text = printed_by_user_errors(ValueError("first line\nsecond line " + "x" * 100))
    assert code == 1
    assert text == "Error: first line second line " + "x" * 100 + "\n"


def test_user_errors_interrupt_exit_130() -> None:
    code, text = printed_by_user_errors(KeyboardInterrupt(), interrupted=lambda: "out.json was not written.")
    assert code == 130
    assert text == "Interrupted: stopped before the run finished, so out.json was not written.\n"


# ---------------------------------------------------------------- real processes


def run_cli(args: list[str], cache_home: Path, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    environment = dict(os.environ, XDG_CACHE_HOME=str(cache_home), COLUMNS="200", **(env or {}))
    environment.pop("ZSL_CL_DATA", None)
    return subprocess.run([sys.executable, "-m", "zsl_cl", *args], capture_output=True, text=True, env=environment, timeout=timeout)


def test_subprocess_corrupt_data_one_line(tmp_path: Path, cache_home: Path) -> None:
    write_truncated_gzip(tmp_path)
    output = tmp_path / "out.json"
    completed = run_cli(["evaluate", "--source", "mnist", "--data-dir", str(tmp_path / "digits"), "--no-download", "--output", str(output)], cache_home)
    assert completed.returncode == 1
    assert completed.stderr.splitlines() == [
        f"Error: truncated or corrupt gzip file {tmp_path}/digits/MNIST/raw/t10k-images-idx3-ubyte.gz "
        "(Compressed file ended before the end-of-stream marker was reached): replace it with an intact copy"
    ]
    assert not output.exists()


def test_subprocess_plugins_unknown_module(tmp_path: Path) -> None:
    completed = run_cli(["plugins", "--plugin", "no_such_module"], tmp_path)
    assert completed.returncode == 1
    assert len(completed.stderr.splitlines()) == 1
    assert "Traceback" not in completed.stderr
    assert "cannot import module 'no_such_module'" in completed.stderr


SLEEPER = '''
import os
import time
from pathlib import Path

from zsl_cl.hookspecs import hookimpl


@hookimpl
def after_experience_evaluated(strategy, experience_index, metrics):
    # Signal the test that experience 1 is evaluated, then wait for its SIGINT.
    if experience_index == 1:
        Path(os.environ["READY_FILE"]).write_text("ready")
        time.sleep(300)
'''


def test_sigint_exits_130_without_output(tmp_path: Path, small_data: Path, cache_home: Path) -> None:
    (tmp_path / "sleeper_plugin.py").write_text(SLEEPER)
    ready, output, checkpoints = tmp_path / "ready", tmp_path / "out.json", tmp_path / "checkpoints"
    environment = dict(
        os.environ, XDG_CACHE_HOME=str(cache_home), COLUMNS="200", READY_FILE=str(ready),
        PYTHONPATH=os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])),
    )
    args = ["evaluate", "--source", "femnist", "--data-dir", str(small_data), "--epochs", "1", "--quiet",
            "--output", str(output), "--checkpoint-dir", str(checkpoints), "--plugin", "sleeper_plugin"]
    process = subprocess.Popen([sys.executable, "-m", "zsl_cl", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)
    try:
        deadline = time.monotonic() + 600
        while not ready.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ready.exists(), process.communicate(timeout=60)[1]
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()

    assert process.returncode == 130
    assert "Traceback" not in stderr
    assert stderr.splitlines()[-1] == (
        f"Interrupted: stopped before the run finished, so {output} was not written; "
        f"rerun with --resume to continue from the checkpoint in {checkpoints}."
    )
    assert not output.exists()
    assert not list(tmp_path.glob(".out.json.*"))
    # The hook runs before the checkpoint of its experience is written, so experience 0 is the last complete one.
    manifest = json.loads((checkpoints / "checkpoint.json").read_text())
    assert [record["index"] for record in manifest["experiences"]] == [0]
    assert not list(checkpoints.glob(".*.tmp"))


@pytest.mark.parametrize(
    "args, message",
    [
        (["evaluate", "--epochs", "abc"], "Error: Invalid value for '--epochs'"),
        (["evaluate", "--bogus"], "Error: No such option: --bogus; run 'zsl-cl evaluate --help' for the options"),
        (["nope"], "Error: No such command 'nope'; run 'zsl-cl --help' for the options"),
    ],
)
def test_usage_errors_one_line(args, message):
    completed = subprocess.run([sys.executable, "-m", "zsl_cl", *args], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 2
    assert completed.stderr.strip().startswith(message)
    assert len(completed.stderr.strip().splitlines()) == 1
