"""Reading checkpoint files without running code from them.

A pickle can name any Python callable and have the loader call it: ``pickle.load`` on an untrusted file is
arbitrary code execution. facesteer therefore never calls it on a checkpoint:

- ``.pt`` / ``.pth`` files (``torch.save``) are read with ``torch.load(weights_only=True)``, PyTorch's own
  restricted unpickler.
- NVIDIA's ``.pkl`` files (stylegan2-ada-pytorch, stylegan3) are plain pickles of whole modules whose classes
  are rebuilt from source code embedded in the file. :func:`load_pickle` uses a restricted unpickler that
  rebuilds only tensors, arrays and plain containers; each embedded module comes back as a
  :class:`PickledModule` holding its parameters, buffers and constructor arguments. The embedded source is
  never executed, and every other global is refused.
- facesteer's own checkpoints are safetensors.
"""

from __future__ import annotations

import argparse
import collections
import copyreg
import io
import os
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy._core.multiarray import _reconstruct as _numpy_reconstruct
from numpy._core.multiarray import scalar as _numpy_scalar

from facesteer.errors import FacesteerError


def describe_checkpoint(path: str | os.PathLike[str], layout: str) -> str:
    """``"NAME (LAYOUT, sha256 PREFIX)"``: which file a generator came from, for manifests and model cards."""
    import hashlib

    path = Path(path)
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return f"{path.name} ({layout}, sha256 {digest.hexdigest()[:16]})"


def load_torch_file(path: str | os.PathLike[str]) -> Any:
    """``torch.load`` restricted to tensors and plain containers (plus argparse.Namespace, which training
    scripts such as rosinality's store as ``args``), on the CPU.

    Raises:
        FacesteerError: missing file, or a file that is not a safe torch checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FacesteerError(f"checkpoint not found: {path}")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        unsafe = re.search(r"GLOBAL ([\w.]+)", str(error))
        if unsafe or "global" in str(error).lower():
            what = unsafe.group(1) if unsafe else "a global that is not a tensor or container"
            raise FacesteerError(f"refusing to load {path}: the checkpoint asks to run {what}") from None
        raise FacesteerError(f"cannot read checkpoint {path}: not a torch checkpoint, or corrupt") from None
    except (RuntimeError, EOFError, OSError) as error:
        raise FacesteerError(f"cannot read checkpoint {path}: {error}") from None


@dataclass
class PickledModule:
    """A torch module from an NVIDIA-style pickle, rebuilt as data.

    Attributes:
        class_name: the class the pickle names (e.g. ``"Generator"``); its embedded source is ignored.
        parameters, buffers: this module's own tensors by name.
        modules: child modules by name.
        init_kwargs: the constructor arguments NVIDIA's persistence recorded (plain dicts).
    """

    class_name: str
    parameters: dict[str, torch.Tensor] = field(default_factory=dict)
    buffers: dict[str, torch.Tensor] = field(default_factory=dict)
    modules: dict[str, PickledModule] = field(default_factory=dict)
    init_kwargs: dict[str, Any] = field(default_factory=dict)

    def state_dict(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """Parameters and buffers of this module and its children, named as ``nn.Module.state_dict`` does."""
        state = {prefix + k: v for k, v in {**self.parameters, **self.buffers}.items() if v is not None}
        for name, child in self.modules.items():
            if isinstance(child, PickledModule):
                state |= child.state_dict(f"{prefix}{name}.")
        return state


class _Refused(pickle.UnpicklingError):
    """The pickle asks for something the restricted unpickler does not build."""


def _persistent_module(meta: dict) -> PickledModule:
    """Stands in for NVIDIA's ``torch_utils.persistence._reconstruct_persistent_obj``: keeps the data only."""
    if not isinstance(meta, dict) or not isinstance(meta.get("state"), dict):
        raise FacesteerError("malformed persistent object in pickle")
    state = meta["state"]
    non_persistent = state.get("_non_persistent_buffers_set") or set()
    return PickledModule(
        class_name=str(meta.get("class_name")),
        parameters=dict(state.get("_parameters") or {}),
        buffers={k: v for k, v in (state.get("_buffers") or {}).items() if k not in non_persistent},
        modules=dict(state.get("_modules") or {}),
        init_kwargs=dict(state.get("_init_kwargs") or {}),
    )


def _storage_from_bytes(data: bytes) -> Any:
    """Stands in for ``torch.storage._load_from_bytes`` (which would call an unrestricted torch.load)."""
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def _rebuild_from_type(func: Any, new_type: type, args: tuple, state: Any) -> Any:
    if new_type not in (torch.Tensor, torch.nn.Parameter):
        raise _Refused(f"tensor subclass {new_type!r} is not allowed")
    result = func(*args)
    return torch.nn.Parameter(result, requires_grad=result.requires_grad) if new_type is torch.nn.Parameter else result


def _rebuild_parameter_with_state(data: torch.Tensor, requires_grad: bool, backward_hooks: Any, state: Any) -> Any:
    return torch.nn.Parameter(data, requires_grad=requires_grad)


class _EasyDict(dict):
    """Stands in for ``dnnlib.EasyDict`` (a dict with attribute access)."""


#: every global a supported pickle may name, and what is built instead
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("collections", "defaultdict"): collections.defaultdict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "dict"): dict,
    ("builtins", "list"): list,
    ("builtins", "tuple"): tuple,
    ("builtins", "object"): object,
    ("builtins", "slice"): slice,
    ("builtins", "complex"): complex,
    ("builtins", "bytearray"): bytearray,
    ("copyreg", "_reconstructor"): copyreg._reconstructor,  # type: ignore[attr-defined]
    ("copyreg", "__newobj__"): copyreg.__newobj__,  # type: ignore[attr-defined]
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter_with_state,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type,
    ("torch.storage", "_load_from_bytes"): _storage_from_bytes,
    ("torch", "Size"): torch.Size,
    ("torch", "device"): torch.device,
    ("torch", "float32"): torch.float32,
    ("torch", "float16"): torch.float16,
    ("numpy", "dtype"): np.dtype,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _persistent_module,
    ("dnnlib.util", "EasyDict"): _EasyDict,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise _Refused(f"global '{module}.{name}' is not allowed") from None

    def persistent_load(self, pid: Any) -> Any:
        raise _Refused("persistent ids are not allowed (is this a torch.save file? use .pt)")


def load_pickle(path: str | os.PathLike[str]) -> Any:
    """Read an NVIDIA-style ``.pkl`` checkpoint with the restricted unpickler.

    Returns:
        The pickled object with every persistent module replaced by a :class:`PickledModule` (for NVIDIA
        training snapshots: a dict with ``G``, ``D``, ``G_ema``, ...).

    Raises:
        FacesteerError: missing file, or a pickle that names anything besides tensors, arrays, plain
            containers and NVIDIA's persistent modules (for example a pickle that would run a command).
    """
    path = Path(path)
    if not path.is_file():
        raise FacesteerError(f"checkpoint not found: {path}")
    with open(path, "rb") as f:
        try:
            return _RestrictedUnpickler(f).load()
        except _Refused as error:
            raise FacesteerError(f"refusing to load {path}: unsafe or unsupported pickle ({error})") from None
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as error:
            raise FacesteerError(f"cannot read pickle {path}: corrupt or truncated ({error})") from None
