"""Checkpoints of the evaluate job: the SAE strategy's state after each complete experience.

A checkpoint folder contains ``checkpoint.json`` and the tensor files it lists.
The JSON file stores the run's settings, the records of the complete
experiences, the strategy's plain attributes, and the name and sha256 of each
tensor file. Every file is written under a temporary name and renamed into
place, and ``checkpoint.json`` is renamed last, so a run killed at any moment
leaves the previous complete checkpoint readable.

Tensor attributes of 1 MiB or more, such as the base-class latents, get a file
each and are written again only when the strategy replaced or modified them,
so checkpointing after every experience does not rewrite them every time.
The tensors below that size, the model's state_dict and the RNG state share
one file per experience.

The optimizer state is not stored: gradient steps happen only in experience
0, and a checkpoint is written only after an experience is complete, so a
resumed run never takes a gradient step with it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import io
import json
import os
import pickle
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

from zsl_cl._avalanche import IncrementalClassifier

__all__ = ["CHECKPOINT_FILE", "CheckpointStore", "NOT_STATE_ATTRIBUTES", "STATE_ATTRIBUTES", "capture_strategy", "restore_strategy"]

CHECKPOINT_FILE = "checkpoint.json"
FORMAT_VERSION = 1

# Every SAEStrategy attribute that changes while the stream is walked. An
# attribute that a strategy lacks is skipped, so strategies with and without
# head expansion share one list.
STATE_ATTRIBUTES = (
    "base_classes",
    "label_projection",
    "sae",
    "code_norm",
    "base_latents",
    "base_labels",
    "base_features",
    "base_gram",
    "head_calibration",
    "shot_features",
    "shot_latents",
    "shot_labels",
    "pseudo_latents",
    "pseudo_labels",
    "references",
    "reference_draw",
    "novelty_threshold",
    "feature_mean",
    "seen_offset",
    "discovered_latents",
    "adapt_seconds",
    "timings",
)

# SAEStrategy attributes that a checkpoint leaves out. The constructor's
# arguments, and what it builds from them, come from the resumed run's own
# settings. Only experience 0 reads the validation split, and the frozen
# backbone gives the cached test features again.
NOT_STATE_ATTRIBUTES = (
    "config",
    "seed",
    "pretrained",
    "full_budget",
    "expand_head",
    "validation_fraction",
    "hold_out",
    "latent_dim",
    "hook",
    "solver",
    "distance",
    "_test_features",
)

SEPARATE_FILE_BYTES = 1 << 20
# The names of the files that CheckpointStore writes: tensor files, and the temporary files of _write_atomic.
_TENSOR_FILE = re.compile(rf"(?:{'|'.join(('state',) + STATE_ATTRIBUTES)})-[0-9]+\.pt")
_TEMPORARY_FILE = re.compile(r"\.(.+)\.[^.]+\.tmp")
# Settings that have a command-line option, by their name in the settings; the others come from the preset.
_OPTION_NAMES = {"lam": "--lambda", "k": "--k", "data_dir": "--data-dir", "base_classes": "--base-classes", "classes_per_exp": "--classes-per-exp", "expand_head": "--expand-head"}
_OPTION_NAMES.update({name: f"--{name}" for name in ("stream", "source", "split", "unseen", "seed", "preset", "device", "epochs", "shots", "solver", "distance")})
# Settings that do not change any result, so a run may resume with another value.
_FREE_SETTINGS = ("download",)


# ------------------------------------------------------------------ capture


def capture_strategy(strategy) -> tuple[dict, dict[str, torch.Tensor]]:
    """Return the strategy's state as (JSON-ready attributes, tensors by key).

    Tensor keys are ``model/<state_dict key>``, ``rng/torch``, ``rng/cuda/<i>``
    and ``attr/<attribute>`` or ``attr/<attribute>.<field>`` for dataclass fields.
    """
    tensors: dict[str, torch.Tensor] = {f"model/{key}": value for key, value in strategy.model.state_dict().items()}
    tensors["rng/torch"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for index, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/cuda/{index}"] = state

    attributes: dict[str, Any] = {}
    for name in STATE_ATTRIBUTES:
        if hasattr(strategy, name):
            attributes[name] = _encode(getattr(strategy, name), f"attr/{name}", tensors)
    return attributes, tensors


def _encode(value: Any, key: str, tensors: dict[str, torch.Tensor]) -> Any:
    # Tensors move to the tensor files and leave their key; dataclasses keep their class's import path.
    if isinstance(value, torch.Tensor):
        tensors[key] = value
        return {"tensor": key, "device": str(value.device)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {field.name: _encode(getattr(value, field.name), f"{key}.{field.name}", tensors) for field in dataclasses.fields(value)}
        return {"dataclass": f"{type(value).__module__}:{type(value).__qualname__}", "fields": fields}
    assert value is None or isinstance(value, (bool, int, float, str, list, dict)), f"cannot checkpoint {key} of type {type(value)}"
    return {"value": value}


# ------------------------------------------------------------------ restore


def restore_strategy(strategy, attributes: dict, tensors: dict[str, torch.Tensor]) -> None:
    """Set the strategy's model, attributes and RNG state from ``capture_strategy``'s output."""
    state_dict = {key.removeprefix("model/"): value for key, value in tensors.items() if key.startswith("model/")}
    resize_incremental_heads(strategy.model, state_dict)
    strategy.model.load_state_dict(state_dict)

    for name, encoded in attributes.items():
        setattr(strategy, name, _decode(encoded, tensors))
    # A distance is fitted on the base-class latents alone, so fitting it
    # again on the restored latents restores its statistics.
    if getattr(strategy, "base_latents", None) is not None:
        strategy.distance.fit(strategy.base_latents, strategy.base_labels)

    torch.set_rng_state(tensors["rng/torch"])
    cuda_states = [tensors[key] for key in sorted(k for k in tensors if k.startswith("rng/cuda/"))]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states)


def _decode(encoded: dict, tensors: dict[str, torch.Tensor]) -> Any:
    if "tensor" in encoded:
        # Tensor files are read onto the CPU; each tensor goes back to the device it was saved from.
        return tensors[encoded["tensor"]].to(encoded["device"])
    if "dataclass" in encoded:
        fields = {name: _decode(value, tensors) for name, value in encoded["fields"].items()}
        return _dataclass(encoded["dataclass"])(**fields)
    return encoded["value"]


def _dataclass(path: str) -> type:
    # Only zsl-cl's own dataclasses are created, so a checkpoint cannot make this import other code.
    module_name, _, qualname = path.partition(":")
    if module_name == "zsl_cl" or module_name.startswith("zsl_cl."):
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part, None)
        if isinstance(target, type) and dataclasses.is_dataclass(target):
            return target
    raise ValueError(f"the checkpoint stores an object of class {path!r}, which is not a zsl-cl dataclass: it was not written by zsl-cl")


def resize_incremental_heads(model: torch.nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
    """Give every IncrementalClassifier in ``model`` the number of output units stored in ``state_dict``.

    A head grows as classes arrive, so a fresh model's head is smaller than
    a saved one and ``load_state_dict`` would reject the saved rows.
    """
    for prefix, module in model.named_modules():
        if not isinstance(module, IncrementalClassifier):
            continue
        key = f"{prefix}." if prefix else ""
        weight = state_dict[f"{key}classifier.weight"]  # (units, in_features)
        device = module.classifier.weight.device
        module.classifier = torch.nn.Linear(weight.shape[1], weight.shape[0]).to(device)
        units = state_dict.get(f"{key}active_units")
        if units is not None:
            module.active_units = torch.zeros_like(units, device=device)


# ------------------------------------------------------------------ files


class CheckpointStore:
    """The checkpoint folder of one run: writes a checkpoint after each experience and reads it back.

    ``settings`` are the run's settings, as ``EvaluateRequest.describe()``
    returns them. A checkpoint written with other settings is rejected, with a
    message that names the first setting that differs.
    """

    def __init__(self, folder: Path, settings: dict) -> None:
        self.folder = Path(folder)
        self.settings = settings
        self.manifest: dict | None = None
        # Attribute name -> (tensor, its version counter, file entry) of the tensor files written or read.
        self._stored: dict[str, tuple[torch.Tensor, int, dict]] = {}

    @property
    def manifest_path(self) -> Path:
        return self.folder / CHECKPOINT_FILE

    def open(self, resume: bool) -> int:
        """Create the folder and read its checkpoint when resuming; return the number of complete experiences.

        Raises ValueError when the folder cannot be created, when it already
        contains a checkpoint and ``resume`` is False, and when the checkpoint is
        unreadable or was written with other settings.
        """
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ValueError(f"cannot create --checkpoint-dir {self.folder} ({error.strerror}): choose a folder that can be created and written") from None
        if not self.manifest_path.exists():
            return 0
        if not resume:
            raise ValueError(
                f"--checkpoint-dir {self.folder} already contains a checkpoint: pass --resume to continue that run, "
                "or choose an empty folder"
            )
        self.manifest = self._read_manifest()
        _check_same(self.manifest["settings"], self.settings, self.folder, "")
        return len(self.manifest["experiences"])

    def check_data(self, data_summary: dict) -> None:
        """Reject a checkpoint whose run read other data (another file count, sample count or split)."""
        if self.manifest is not None and self.manifest["data"] != data_summary:
            raise ValueError(
                f"the checkpoint in {self.folder} was written for other data ({self.manifest['data']['description']}), "
                f"but this run reads {data_summary['description']}: use the same data, or choose another --checkpoint-dir"
            )

    def restore(self, strategy) -> list[dict]:
        """Load the checkpoint into ``strategy`` and return the records of its complete experiences."""
        assert self.manifest is not None, "restore() needs open(resume=True) to have found a checkpoint"
        tensors: dict[str, torch.Tensor] = {}
        for entry in self.manifest["files"].values():
            tensors.update(self._read_tensor_file(entry))
        restore_strategy(strategy, self.manifest["attributes"], tensors)
        for name, entry in self.manifest["files"].items():
            if name != "state":
                tensor = getattr(strategy, name)
                self._stored[name] = (tensor, tensor._version, entry)
        return list(self.manifest["experiences"])

    def save(self, strategy, experiences: list[dict], data_summary: dict) -> None:
        """Write the state after the last of ``experiences``; the previous checkpoint stays valid until the rename."""
        index = experiences[-1]["index"]
        attributes, tensors = capture_strategy(strategy)
        files = {}
        for name in STATE_ATTRIBUTES:
            tensor = tensors.get(f"attr/{name}")
            if tensor is not None and tensor.nbytes >= SEPARATE_FILE_BYTES:
                files[name] = self._store_separately(name, tensors.pop(f"attr/{name}"), index)
        files["state"] = self._write_tensor_file(f"state-{index}.pt", tensors)

        manifest = {
            "format": FORMAT_VERSION,
            "settings": self.settings,
            "data": data_summary,
            "experiences": experiences,
            "attributes": attributes,
            "files": files,
        }
        _write_atomic(self.manifest_path, (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode())
        self.manifest = manifest
        self._remove_unlisted(files)

    # -------------------------------------------------------------- helpers

    def _store_separately(self, name: str, tensor: torch.Tensor, index: int) -> dict:
        # A tensor that is the same object with the same version counter as
        # the one stored before has not changed, so its file is reused.
        stored = self._stored.get(name)
        if stored is not None and stored[0] is tensor and stored[1] == tensor._version:
            return stored[2]
        entry = self._write_tensor_file(f"{name}-{index}.pt", {f"attr/{name}": tensor})
        self._stored[name] = (tensor, tensor._version, entry)
        return entry

    def _write_tensor_file(self, name: str, tensors: dict[str, torch.Tensor]) -> dict:
        buffer = io.BytesIO()
        # clone() drops views' larger storages, which torch.save would otherwise write whole.
        torch.save({key: value.detach().cpu().clone() for key, value in tensors.items()}, buffer)
        payload = buffer.getvalue()
        _write_atomic(self.folder / name, payload)
        return {"name": name, "sha256": hashlib.sha256(payload).hexdigest()}

    def _read_tensor_file(self, entry: dict) -> dict[str, torch.Tensor]:
        path = self.folder / entry["name"]
        try:
            payload = path.read_bytes()
        except OSError as error:
            raise ValueError(f"cannot read checkpoint file {path} ({error.strerror}): {self._fix()}") from None
        if hashlib.sha256(payload).hexdigest() != entry["sha256"]:
            raise ValueError(f"checkpoint file {path} does not match its sha256 in {CHECKPOINT_FILE}, so it is corrupt: {self._fix()}")
        try:
            return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
        except (RuntimeError, pickle.UnpicklingError) as error:
            raise ValueError(f"cannot load checkpoint file {path} ({_one_line(error)}): {self._fix()}") from None

    def _read_manifest(self) -> dict:
        try:
            manifest = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise ValueError(f"cannot read checkpoint {self.manifest_path} ({_one_line(error)}): {self._fix()}") from None
        expected = {"format", "settings", "data", "experiences", "attributes", "files"}
        if not isinstance(manifest, dict) or not expected <= manifest.keys():
            raise ValueError(f"{self.manifest_path} is not a zsl-cl checkpoint: {self._fix()}")
        if manifest["format"] != FORMAT_VERSION:
            raise ValueError(
                f"checkpoint {self.manifest_path} has format {manifest['format']!r}, and this zsl-cl reads format {FORMAT_VERSION}: "
                "rerun without --resume in an empty --checkpoint-dir"
            )
        return manifest

    def _remove_unlisted(self, files: dict) -> None:
        # Tensor files that the new checkpoint.json no longer lists belong to
        # earlier experiences, and temporary files to writes that were killed.
        # Only names that this class writes are removed, because the folder may hold other files.
        listed = {entry["name"] for entry in files.values()}
        for path in self.folder.iterdir():
            temporary = _TEMPORARY_FILE.fullmatch(path.name)
            if temporary is not None and (temporary[1] == CHECKPOINT_FILE or _TENSOR_FILE.fullmatch(temporary[1])):
                path.unlink(missing_ok=True)
            elif _TENSOR_FILE.fullmatch(path.name) and path.name not in listed:
                path.unlink(missing_ok=True)

    def _fix(self) -> str:
        return f"delete {self.folder} to start again, or choose another --checkpoint-dir"


def _check_same(saved: Any, current: Any, folder: Path, key: str) -> None:
    """Raise a ValueError naming the first setting whose saved and current values differ."""
    if isinstance(saved, dict) and isinstance(current, dict):
        for name in sorted(saved.keys() | current.keys()):
            if name not in _FREE_SETTINGS:
                _check_same(saved.get(name), current.get(name), folder, name)
        return
    if saved != current:
        option = _OPTION_NAMES.get(key, f"the preset's {key}")
        raise ValueError(
            f"the checkpoint in {folder} was written with {option} {saved!r}, but this run has {option} {current!r}: "
            f"rerun with {option} {saved!r} to resume, or choose another --checkpoint-dir"
        )


def _write_atomic(path: Path, payload: bytes) -> None:
    """Write ``payload`` to a temporary file beside ``path``, flush it to disk, then rename it to ``path``."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())
