"""Reading checkpoint files without running code from them.

A pickle can name any Python callable and have the loader call it: ``pickle.load`` on an untrusted file is
arbitrary code execution. facesteer therefore never calls it on a checkpoint:

- ``.pt`` / ``.pth`` files (``torch.save``) are read with ``torch.load(weights_only=True)``, PyTorch's own
  restricted unpickler.
- NVIDIA's ``.pkl`` files (stylegan2-ada-pytorch, stylegan3) are plain pickles of whole modules whose classes
  are rebuilt from source code embedded in the file. :func:`load_pickle` uses a restricted unpickler that
  rebuilds only tensors, plain numeric numpy arrays and scalars, and plain containers; each embedded module
  comes back as a :class:`PickledModule` holding its parameters, buffers and constructor arguments. The
  embedded source is never executed. It refuses:

  - every global not in its list (Python 2 names in protocol 0-2 pickles are mapped to Python 3 ones first);
  - numpy dtypes other than bool, int, uint, float and complex (object, structured / void, subarray, string,
    datetime), and any dtype state other than numpy's own for such a dtype: forged dtype state (say, fields
    and flags) makes numpy read bytes from the file as object pointers and crash;
  - BUILD (``__setstate__`` or setting attributes) on a class, a function or any other global, which would
    change it for the whole process; BUILD restores only objects the pickle itself creates;
  - persistent ids (those are ``torch.save`` files).

  A tensor view that runs past the end of its storage is reported as a corrupt pickle.
- facesteer's own checkpoints are safetensors.
"""

from __future__ import annotations

import _compat_pickle
import argparse
import collections
import copyreg
import io
import os
import pickle
import pickletools
import re
import reprlib
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from numpy._core.multiarray import _reconstruct as _real_numpy_reconstruct
from numpy._core.multiarray import scalar as _real_numpy_scalar

from facesteer.errors import FacesteerError
from facesteer.files import file_sha256


def describe_checkpoint(path: str | os.PathLike[str], layout: str) -> str:
    """``"NAME (LAYOUT, sha256 PREFIX)"``: which file a generator came from, for manifests and model cards."""
    return f"{Path(path).name} ({layout}, sha256 {file_sha256(path)[:16]})"


#: what torch's own weights-only unpickler allows and facesteer does not: a global that allocates what the
#: pickle asks (``bytearray(3 GiB)`` from a few bytes)
_REFUSED_IN_TORCH_PICKLES = ("bytearray",)


def check_torch_archive(source: str | os.PathLike[str] | bytes, what: str) -> None:
    """Refuse a ``torch.save`` archive that could cost far more than its size before torch reads it: compressed
    records (torch never writes them; a 2 MB deflate record can declare 2 GiB), records larger than the archive,
    or a pickle naming :data:`_REFUSED_IN_TORCH_PICKLES`. Legacy (non-zip) files are left to torch.

    Raises:
        FacesteerError: one line naming ``what``.
    """
    size = len(source) if isinstance(source, bytes) else os.path.getsize(source)
    handle = io.BytesIO(source) if isinstance(source, bytes) else source
    if not zipfile.is_zipfile(handle):
        return
    try:
        with zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source) as archive:
            for info in archive.infolist():
                if info.compress_type != zipfile.ZIP_STORED:
                    raise FacesteerError(f"refusing to load {what}: record {info.filename[:80]!r} is compressed "
                                         "(torch.save writes none)")  # fmt: skip
                if info.file_size > size:
                    raise FacesteerError(f"refusing to load {what}: record {info.filename[:80]!r} declares "
                                         f"{info.file_size:,} bytes, more than the file's {size:,}")  # fmt: skip
            for info in archive.infolist():
                if info.filename.endswith(".pkl"):
                    _check_pickle_names(archive.read(info), what)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise FacesteerError(f"cannot read checkpoint {what}: corrupt archive ({_first_line(error)})") from None


def _check_pickle_names(data: bytes, what: str) -> None:
    """Refuse a pickle any of whose strings (the names GLOBAL and STACK_GLOBAL use) is a refused global."""
    for opcode, argument, _ in pickletools.genops(data):
        if isinstance(argument, str) and any(name in argument.split() for name in _REFUSED_IN_TORCH_PICKLES):
            raise FacesteerError(f"refusing to load {what}: the checkpoint asks to build {argument[:80]!r} "
                                 f"({opcode.name})")  # fmt: skip


def load_torch_file(path: str | os.PathLike[str]) -> Any:
    """``torch.load`` restricted to tensors and plain containers (plus argparse.Namespace, which training
    scripts such as rosinality's store as ``args``), on the CPU.

    Raises:
        FacesteerError: missing file, or a file that is not a safe torch checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FacesteerError(f"checkpoint not found: {path}")
    check_torch_archive(path, str(path))
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        unsafe = re.search(r"GLOBAL ([\w.]+)", str(error))
        if unsafe or "global" in str(error).lower():
            what = unsafe.group(1) if unsafe else "a global that is not a tensor or container"
            raise FacesteerError(f"refusing to load {path}: the checkpoint asks to run {what}") from None
        raise FacesteerError(f"cannot read checkpoint {path}: not a torch checkpoint, or corrupt") from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise FacesteerError(f"cannot read checkpoint {path}: {_first_line(error)}") from None


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
    """Stands in for ``torch.storage._load_from_bytes`` (which would call an unrestricted torch.load): the
    archive is checked first (:func:`check_torch_archive`)."""
    if type(data) is not bytes:
        raise _Refused("torch.storage._load_from_bytes from something other than bytes")
    try:
        check_torch_archive(data, "an embedded storage")
    except FacesteerError as error:
        raise _Refused(str(error)) from None
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def _rebuild_tensor_in_bounds(
    storage: Any,
    storage_offset: int,
    size: tuple,
    stride: tuple,
    requires_grad: bool,
    backward_hooks: Any,
    metadata: Any = None,
) -> torch.Tensor:
    """Stands in for ``torch._utils._rebuild_tensor_v2``, refusing a view that runs past its storage.

    torch would grow the storage to fit such a view (with uninitialised memory, and without limit), so the
    view is first checked with ``as_strided`` on a tensor over the whole storage, which raises RuntimeError
    (reported as a corrupt pickle).
    """
    untyped = storage._untyped_storage
    whole = torch.empty((0,), dtype=storage.dtype, device=untyped.device).set_(untyped)
    whole.as_strided(size, stride, storage_offset)
    return torch._utils._rebuild_tensor_v2(
        storage, storage_offset, size, stride, requires_grad, backward_hooks, metadata
    )


def _rebuild_from_type(func: Any, new_type: type, args: tuple, state: Any) -> Any:
    if new_type not in (torch.Tensor, torch.nn.Parameter):
        raise _Refused(f"tensor subclass {new_type!r} is not allowed")
    result = func(*args)
    return torch.nn.Parameter(result, requires_grad=result.requires_grad) if new_type is torch.nn.Parameter else result


def _rebuild_parameter_with_state(data: torch.Tensor, requires_grad: bool, backward_hooks: Any, state: Any) -> Any:
    return torch.nn.Parameter(data, requires_grad=requires_grad)


class _EasyDict(dict):
    """Stands in for ``dnnlib.EasyDict`` (a dict with attribute access)."""


def _reconstructor(cls: Any, base: Any, state: Any) -> Any:
    """Stands in for ``copyreg._reconstructor`` (how protocol 0 and 1 pickle an object): over ``object`` (no
    state) or ``dict`` (a dict) only. Over another base it calls ``base.__new__`` and ``base.__init__`` with the
    pickle's argument: ``bytearray`` with 3 GiB, say."""
    plain = base is object and state is None
    mapping = base is dict and type(state) is dict and isinstance(cls, type) and issubclass(cls, dict)
    if not (plain or mapping):
        raise _Refused(f"copyreg._reconstructor over {reprlib.repr(base)} is not allowed (only object or dict)")
    return copyreg._reconstructor(cls, base, state)  # type: ignore[attr-defined]


# --- numpy: plain numeric arrays and scalars only ------------------------------------------------------------
#
# numpy pickles an array as ``_reconstruct(ndarray, (0,), b"b")`` followed by BUILD with ``(version, shape,
# dtype, fortran_order, raw_bytes)``, a scalar as ``scalar(dtype, raw_bytes)``, and a dtype as
# ``dtype("f4", False, True)`` followed by BUILD with its state. A dtype's state sets its fields and flags
# directly, so a forged one (say a void dtype with an object field, flagged as holding no objects) makes numpy
# read raw bytes from the file as object pointers: a crash, or worse. The stand-ins below therefore build only
# plain numeric dtypes (bool, int, uint, float, complex) and accept no other dtype state.

#: the dtype kinds allowed: bool, signed and unsigned integers, floating point, complex
_NUMERIC_KINDS = ("b", "i", "u", "f", "c")

#: the only dtype states accepted, exactly as numpy pickles a plain numeric dtype: version 3, a byte order,
#: no subarray, no field names, no fields, the type's own size and alignment (-1), no flags
_NUMERIC_DTYPE_STATES = [(3, byte_order, None, None, None, -1, -1, 0) for byte_order in ("<", ">", "|", "=")]


def _is_plain_numeric(dtype: Any) -> bool:
    """Whether ``dtype`` is a numpy dtype of one bool, integer, float or complex number: no fields, no
    subarray, no objects, no metadata, no flags."""
    return (
        isinstance(dtype, np.dtype)
        and dtype.kind in _NUMERIC_KINDS
        and dtype.fields is None
        and dtype.names is None
        and dtype.subdtype is None
        and dtype.metadata is None
        and not dtype.hasobject
        and dtype.flags == 0
        and dtype.byteorder in ("<", ">", "|", "=")
    )


def _is_numeric_dtype_state(state: Any) -> bool:
    """Whether ``state`` (what BUILD would pass to ``dtype.__setstate__``) is one of
    :data:`_NUMERIC_DTYPE_STATES`; types are compared too, so ``True`` does not pass for ``1``."""
    return type(state) is tuple and any(
        len(state) == len(expected) and all(type(a) is type(b) and a == b for a, b in zip(state, expected, strict=True))
        for expected in _NUMERIC_DTYPE_STATES
    )


def _plain_numeric_dtype(spec: Any) -> np.dtype:
    """The dtype a type code (``"f4"``, ``b"b"``, ...) names, refused unless it is plain numeric."""
    if not isinstance(spec, (str, bytes, np.dtype)):
        raise _Refused(f"a numpy dtype made from a {type(spec).__name__} is not allowed (only type codes)")
    dtype = np.dtype(spec)
    if not _is_plain_numeric(dtype):
        raise _Refused(f"numpy dtype {dtype} is not allowed (only bool, int, uint, float and complex)")
    return dtype


def _numpy_dtype(spec: Any, align: bool = False, copy: bool = False) -> np.dtype:
    """Stands in for ``numpy.dtype``: a plain numeric dtype, always a fresh copy, so that the BUILD which
    follows (setting the byte order) never touches numpy's shared dtype objects."""
    return np.dtype(_plain_numeric_dtype(spec), copy=True)


def _numpy_ndarray(*args: Any, **kwargs: Any) -> None:
    """Stands in for ``numpy.ndarray``, which numpy's pickles name only as the class for ``_reconstruct``.
    Calling it (which could make an object array) is refused."""
    raise _Refused("calling numpy.ndarray is not allowed (numpy pickles rebuild arrays through _reconstruct)")


def _numpy_reconstruct(subtype: Any, shape: Any, typecode: Any) -> np.ndarray:
    """Stands in for numpy's ``_reconstruct``: an empty ndarray of a plain numeric dtype, whose shape, dtype
    and data the following BUILD sets (see :func:`_check_array_state`)."""
    if subtype is not _numpy_ndarray:
        raise _Refused("numpy _reconstruct may only rebuild numpy.ndarray")
    if not isinstance(shape, tuple | list) or tuple(shape) != (0,):
        raise _Refused(f"numpy _reconstruct with shape {reprlib.repr(shape)}: numpy pickles always give (0,)")
    return _real_numpy_reconstruct(np.ndarray, (0,), _plain_numeric_dtype(typecode))


def _numpy_scalar(dtype: Any, data: Any = None) -> Any:
    """Stands in for numpy's ``scalar``: a scalar of a plain numeric dtype, from its raw bytes."""
    if not _is_plain_numeric(dtype):
        raise _Refused(f"a numpy scalar of dtype {reprlib.repr(dtype)} is not allowed (only plain numeric dtypes)")
    if type(data) is not bytes:
        raise _Refused(f"a numpy scalar from a {type(data).__name__} is not allowed (only from raw bytes)")
    return _real_numpy_scalar(dtype, data)


def _check_array_state(state: Any) -> None:
    """Refuse an ndarray BUILD state other than ``([version,] shape, plain numeric dtype, fortran_order,
    raw_bytes)`` (an object array pickles its items as a list instead of bytes)."""
    if type(state) is not tuple or len(state) not in (4, 5):
        raise _Refused("numpy array state is not (version, shape, dtype, fortran_order, data)")
    dtype, data = state[-3], state[-1]
    if not _is_plain_numeric(dtype):
        raise _Refused(f"a numpy array of dtype {reprlib.repr(dtype)} is not allowed (only plain numeric dtypes)")
    if type(data) is not bytes:
        raise _Refused(f"numpy array data from a {type(data).__name__} is not allowed (only raw bytes)")


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
    ("copyreg", "_reconstructor"): _reconstructor,
    ("copyreg", "__newobj__"): copyreg.__newobj__,  # type: ignore[attr-defined]
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_in_bounds,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter_with_state,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type,
    ("torch.storage", "_load_from_bytes"): _storage_from_bytes,
    ("torch", "Size"): torch.Size,
    ("torch", "device"): torch.device,
    ("torch", "float32"): torch.float32,
    ("torch", "float16"): torch.float16,
    ("numpy", "dtype"): _numpy_dtype,
    ("numpy", "ndarray"): _numpy_ndarray,
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _persistent_module,
    ("dnnlib.util", "EasyDict"): _EasyDict,
}

#: the name of each allowed global, by identity, for error messages
_GLOBAL_NAMES: dict[int, str] = {id(value): f"{module}.{name}" for (module, name), value in _ALLOWED_GLOBALS.items()}


def _python3_name(module: str, name: str) -> tuple[str, str]:
    """The Python 3 name of a global that an old (protocol 0-2) pickle names by its Python 2 name, mapped as
    pickle's own ``find_class`` maps it: ``__builtin__.set`` -> ``builtins.set``, ``copy_reg`` -> ``copyreg``."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def _check_build(target: Any, state: Any) -> None:
    """Refuse a BUILD (``target.__setstate__(state)``, or setting ``target``'s attributes from ``state``) that
    could do harm.

    BUILD is meant to restore an object the pickle has just created. On a class, a function or any other
    global it would change that object for the whole process (a class attribute, a function's
    ``__defaults__``), so it is refused; on numpy dtypes and arrays, only plain numeric state is accepted.
    """
    if isinstance(target, type) or callable(target) or id(target) in _GLOBAL_NAMES:
        what = _GLOBAL_NAMES.get(id(target)) or getattr(target, "__qualname__", type(target).__name__)
        raise _Refused(f"BUILD on {what} is not allowed (a pickle may set the state of the objects it creates only)")
    if isinstance(target, torch.Tensor):
        # torch pickles tensors through _rebuild_tensor_v2 and never BUILDs them; a BUILD would call
        # Tensor.__setstate__ -> set_(storage, offset, size, stride), skipping the bounds check of the rebuild
        raise _Refused("BUILD on a tensor is not allowed (torch rebuilds tensors through _rebuild_tensor_v2)")
    if isinstance(target, np.dtype) and not _is_numeric_dtype_state(state):
        raise _Refused(f"numpy dtype state {reprlib.repr(state)} is not allowed (only plain numeric dtypes)")
    if isinstance(target, np.ndarray):
        _check_array_state(state)


class _RestrictedUnpickler(pickle._Unpickler):
    """An unpickler that builds only :data:`_ALLOWED_GLOBALS`, and checks every BUILD (:func:`_check_build`).

    It extends pickle's pure-Python ``_Unpickler``, not the C ``pickle.Unpickler``: only the Python one runs
    each opcode through a ``dispatch`` table that a subclass can change, and BUILD needs that. (Loading is
    slower, but a checkpoint's bulk is tensor data, which torch reads in C.)
    """

    dispatch: ClassVar[dict[int, Any]] = dict(pickle._Unpickler.dispatch)  # opcode -> handler

    def find_class(self, module: str, name: str) -> Any:
        # pickle's own find_class maps Python 2 names for old protocols; this override must do so itself
        key = _python3_name(module, name) if self.proto < 3 and self.fix_imports else (module, name)
        try:
            return _ALLOWED_GLOBALS[key]
        except KeyError:
            raise _Refused(f"global '{module}.{name}' is not allowed") from None

    def persistent_load(self, pid: Any) -> Any:
        raise _Refused("persistent ids are not allowed (is this a torch.save file? use .pt)")

    def load_build(self) -> None:
        """The BUILD opcode: the stack holds ``..., target, state``; check them, then build as pickle does."""
        _check_build(self.stack[-2], self.stack[-1])
        pickle._Unpickler.load_build(self)

    dispatch[pickle.BUILD[0]] = load_build


def _first_line(error: BaseException) -> str:
    """An exception's message, cut to its first line (errors here are reported on one line)."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def load_pickle(path: str | os.PathLike[str]) -> Any:
    """Read an NVIDIA-style ``.pkl`` checkpoint with the restricted unpickler.

    Returns:
        The pickled object with every persistent module replaced by a :class:`PickledModule` (for NVIDIA
        training snapshots: a dict with ``G``, ``D``, ``G_ema``, ...).

    Raises:
        FacesteerError: missing file; a pickle that names anything besides tensors, plain numeric arrays,
            plain containers and NVIDIA's persistent modules (for example a pickle that would run a command),
            or that applies BUILD to a class or function ("refusing to load"); or a corrupt or truncated one,
            including tensors that run past their storage ("cannot read pickle").
    """
    path = Path(path)
    if not path.is_file():
        raise FacesteerError(f"checkpoint not found: {path}")
    with open(path, "rb") as f:
        try:
            return _RestrictedUnpickler(f).load()
        except _Refused as error:
            raise FacesteerError(f"refusing to load {path}: unsafe or unsupported pickle ({error})") from None
        except (
            pickle.UnpicklingError,
            EOFError,
            ValueError,
            TypeError,
            AttributeError,
            IndexError,
            struct.error,  # the pure-Python unpickler's short reads
            OverflowError,
            RuntimeError,  # torch: a tensor view past the end of its storage, and the like
            MemoryError,  # a size no checkpoint has (a bytearray or storage of 2**62 bytes)
        ) as error:
            raise FacesteerError(f"cannot read pickle {path}: corrupt or truncated ({_first_line(error)})") from None


def check_state(expected: dict[str, tuple[int, ...]], state: dict[str, Any], what: str, architecture: str) -> None:
    """Refuse in one line a state dict whose names or shapes are not ``expected`` (name -> shape), before any
    network is loaded from it (torch's own message runs over many lines).

    Raises:
        FacesteerError: ``"WHAT does not match ARCHITECTURE: N missing (first NAME); ..."``.
    """
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(map(str, set(state) - set(expected)))
    wrong = sorted(k for k in set(expected) & set(state) if tuple(getattr(state[k], "shape", ())) != tuple(expected[k]))
    problems = []
    if missing:
        problems.append(f"{len(missing)} tensor(s) missing (first {missing[0][:80]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected (first {unexpected[0][:80]})")
    if wrong:
        first = wrong[0]
        problems.append(f"{len(wrong)} of another shape (first {first[:80]}: {tuple(state[first].shape)} in the "
                        f"file, {tuple(expected[first])} expected)")  # fmt: skip
    if problems:
        raise FacesteerError(f"{what} does not match {architecture}: {'; '.join(problems)}")
