"""The restricted unpickler against hand-made hostile ``.pkl`` files.

Each pickle here is assembled from raw opcodes, because a normal ``pickle.dumps`` never writes these
shapes: numpy dtypes with forged state, BUILD applied to a class or function, tensor views longer than their
storage, Python 2 names. Pickles that could crash the interpreter before the fix are loaded in a fresh
Python process, so that a segmentation fault fails the test instead of ending the test run.
"""

from __future__ import annotations

import collections
import io
import json
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from facesteer import checkpoints
from facesteer.checkpoints import load_pickle
from facesteer.errors import FacesteerError

from .conftest import one_line_error

# --- building pickles opcode by opcode ---------------------------------------------------------------------


def value(obj: Any) -> bytes:
    """The opcodes that push ``obj`` onto the unpickler's stack (protocol 3, no memo), ready to splice."""
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=3)
    pickler.fast = True  # no memo opcodes, so that pieces from separate calls never clash
    pickler.dump(obj)
    data = buffer.getvalue()
    assert data.startswith(pickle.PROTO + b"\x03") and data.endswith(pickle.STOP)
    return data[2:-1]


def global_(module: str, name: str) -> bytes:
    """Push the global ``module.name`` (GLOBAL goes through the unpickler's ``find_class``)."""
    return pickle.GLOBAL + f"{module}\n{name}\n".encode()


def call(function: bytes, *arguments: bytes) -> bytes:
    """Push ``function(*arguments)`` (REDUCE)."""
    return function + pickle.MARK + b"".join(arguments) + pickle.TUPLE + pickle.REDUCE


def build(target: bytes, state: bytes) -> bytes:
    """Push ``target``, then apply BUILD with ``state`` to it (``__setstate__`` or attribute updates)."""
    return target + state + pickle.BUILD


def tuple_(*items: bytes) -> bytes:
    return pickle.MARK + b"".join(items) + pickle.TUPLE


def write_pickle(path: Path, opcodes: bytes) -> Path:
    path.write_bytes(pickle.PROTO + b"\x03" + opcodes + pickle.STOP)
    return path


def numpy_dtype(spec: Any, state: tuple) -> bytes:
    """A dtype as numpy pickles one: ``numpy.dtype(spec, False, True)``, then BUILD with ``state``."""
    return build(call(global_("numpy", "dtype"), value(spec), value(False), value(True)), value(state))


def numpy_array(dtype: bytes, raw: Any, shape: tuple = (1,)) -> bytes:
    """An array as numpy pickles one: ``_reconstruct(ndarray, (0,), b"b")``, then BUILD with its real
    ``(version, shape, dtype, fortran_order, raw_data)``."""
    empty = call(
        global_("numpy._core.multiarray", "_reconstruct"), global_("numpy", "ndarray"), value((0,)), value(b"b")
    )
    return build(empty, tuple_(value(1), value(shape), dtype, value(False), value(raw)))


def numpy_scalar(dtype: bytes, raw: bytes) -> bytes:
    """A scalar as numpy pickles one: ``numpy._core.multiarray.scalar(dtype, raw_bytes)``."""
    return call(global_("numpy._core.multiarray", "scalar"), dtype, value(raw))


# --- numpy dtypes --------------------------------------------------------------------------------------------

LOAD_IN_A_FRESH_PROCESS = """
import sys
from facesteer.checkpoints import load_pickle
from facesteer.errors import FacesteerError
try:
    loaded = load_pickle(sys.argv[1])
except FacesteerError as error:
    print(error)
    sys.exit(0)
print("loaded:", repr(loaded), flush=True)  # reading a forged array or scalar is what crashes
sys.exit(1)
"""


def load_in_a_fresh_process(path: Path) -> str:
    """Load ``path`` with :func:`load_pickle` in a new interpreter; return the ``FacesteerError`` message.

    Fails (instead of crashing pytest) when the load segfaults or succeeds.
    """
    completed = subprocess.run(
        [sys.executable, "-c", LOAD_IN_A_FRESH_PROCESS, str(path)], capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, (
        f"loading ended with status {completed.returncode} (a negative status: killed by that signal), not a "
        f"FacesteerError\nstdout: {completed.stdout}\nstderr: {completed.stderr[-2000:]}"
    )
    return completed.stdout.strip()


OBJECT = np.dtype("O")
#: a void dtype whose one field holds object pointers, with the flags claiming no objects but "needs refcounting"
#: (1 = NPY_ITEM_REFCOUNT without NPY_LIST_PICKLE), so numpy takes raw bytes and later frees them as pointers
OBJECT_FIELD = (3, "|", None, ("a",), {"a": (OBJECT, 0)}, 8, 1, 1)

FORGED_DTYPES = {
    "object field, in an array": numpy_array(numpy_dtype("V8", OBJECT_FIELD), b"A" * 8),
    "object field, in a scalar": numpy_scalar(numpy_dtype("V8", OBJECT_FIELD), b"A" * 8),
    "object field on a float dtype": numpy_array(
        numpy_dtype("f8", (3, "<", None, ("a",), {"a": (OBJECT, 0)}, -1, -1, 1)), b"A" * 8
    ),
    "fields on a float dtype": numpy_array(
        numpy_dtype("f8", (3, "<", None, ("a",), {"a": (np.dtype("f8"), 0)}, -1, -1, 0)), b"A" * 8
    ),
    "refcount flag on a float dtype": numpy_array(numpy_dtype("f8", (3, "<", None, None, None, -1, -1, 1)), b"A" * 8),
    "structured dtype": numpy_array(
        numpy_dtype("V8", (3, "|", None, ("a", "b"), {"a": (np.dtype("f4"), 0), "b": (np.dtype("f4"), 4)}, 8, 1, 0)),
        b"A" * 8,
    ),
    "subarray dtype": numpy_array(numpy_dtype("V8", (3, "|", (np.dtype("f4"), (2,)), None, None, 8, 4, 0)), b"A" * 8),
    "void dtype": numpy_array(numpy_dtype("V8", (3, "|", None, None, None, 8, 1, 0)), b"A" * 8),
    "unknown byte order": numpy_array(numpy_dtype("f4", (3, "x", None, None, None, -1, -1, 0)), b"A" * 4),
    "dtype metadata": numpy_array(numpy_dtype("f4", (4, "<", None, None, None, -1, -1, 0, {"x": 1})), b"A" * 4),
}


@pytest.mark.parametrize("case", FORGED_DTYPES)
def test_forged_numpy_dtypes_are_refused_without_crashing(tmp_path, case):
    path = write_pickle(tmp_path / "forged.pkl", value({}) + value("G_ema") + FORGED_DTYPES[case] + pickle.SETITEM)
    message = load_in_a_fresh_process(path)
    assert message.startswith(f"refusing to load {path}") and "dtype" in message, message
    assert "\n" not in message


OBJECT_ARRAYS = {
    "object dtype": numpy_dtype("O8", (3, "|", None, None, None, -1, -1, 63)),
    "array state with an object dtype": numpy_array(numpy_dtype("O8", (3, "|", None, None, None, -1, -1, 63)), [[1]]),
    "_reconstruct with an object type code": call(
        global_("numpy._core.multiarray", "_reconstruct"), global_("numpy", "ndarray"), value((2,)), value("O")
    ),
    "numpy.ndarray called": call(global_("numpy", "ndarray"), value((2,)), value("O")),
    "copyreg.__newobj__ on numpy.ndarray": call(
        global_("copyreg", "__newobj__"), global_("numpy", "ndarray"), value((2,)), value("O")
    ),
    "NEWOBJ on numpy.ndarray": global_("numpy", "ndarray") + tuple_(value((2,)), value("O")) + pickle.NEWOBJ,
    "copyreg.__newobj__ on numpy.dtype": call(global_("copyreg", "__newobj__"), global_("numpy", "dtype"), value("O")),
}


@pytest.mark.parametrize("case", OBJECT_ARRAYS)
def test_object_dtypes_and_arrays_are_refused(tmp_path, case):
    path = write_pickle(tmp_path / "objects.pkl", OBJECT_ARRAYS[case])
    with pytest.raises(FacesteerError, match=f"^(refusing to load|cannot read pickle) {path}") as error:
        load_pickle(path)
    assert "\n" not in str(error.value)


def test_plain_numpy_arrays_and_scalars_still_load(tmp_path):
    arrays = {
        "float": np.arange(6, dtype=np.float32).reshape(2, 3),
        "big-endian": np.arange(4, dtype=">f8"),
        "bool": np.array([True, False]),
        "int8": np.arange(-3, 3, dtype=np.int8),
        "uint16": np.arange(5, dtype=np.uint16),
        "complex": np.array([1 + 2j], dtype=np.complex64),
        "half": np.ones(3, dtype=np.float16),
        "fortran": np.asfortranarray(np.arange(6, dtype=np.int64).reshape(2, 3)),
    }
    scalars = {"float32": np.float32(1.5), "int64": np.int64(-7), "bool": np.bool_(True), "complex": np.complex128(2j)}
    for protocol in (3, 4):
        pickled = pickle.dumps({"arrays": arrays, "scalars": scalars}, protocol=protocol)
        expected = pickle.loads(pickled)  # our own data: what numpy itself makes of it (native byte order)
        path = tmp_path / f"arrays{protocol}.pkl"
        path.write_bytes(pickled)
        loaded = load_pickle(path)
        for name, array in expected["arrays"].items():
            np.testing.assert_array_equal(loaded["arrays"][name], array)
            assert loaded["arrays"][name].dtype == array.dtype, name
            assert loaded["arrays"][name].flags.f_contiguous == array.flags.f_contiguous, name
        for name, scalar in expected["scalars"].items():
            assert loaded["scalars"][name] == scalar and type(loaded["scalars"][name]) is type(scalar), name


def test_numpy_dtype_singletons_are_not_changed(tmp_path):
    """BUILD after ``numpy.dtype("f4", False, False)`` (no copy) must act on a copy, never on numpy's shared
    float32 dtype."""
    no_copy = call(global_("numpy", "dtype"), value("f4"), value(False), value(False))
    path = write_pickle(tmp_path / "swap.pkl", build(no_copy, value((3, ">", None, None, None, -1, -1, 0))))
    loaded = load_pickle(path)
    assert loaded == np.dtype(">f4")
    assert np.dtype("f4").byteorder == "=" and np.dtype(np.float32).isnative


# --- BUILD on classes and functions --------------------------------------------------------------------------


def snapshot(target: Any) -> tuple:
    """What BUILD could change on a class or function: its attribute dict, and a function's defaults."""
    return dict(vars(target)), getattr(target, "__defaults__", None)


def restore(target: Any, saved: tuple) -> None:
    """Undo whatever a test pickle changed, so that a failing test leaves no damage to later ones."""
    attributes, defaults = saved
    if isinstance(target, type):
        for name in set(vars(target)) - set(attributes):
            delattr(target, name)
        for name, value_ in attributes.items():
            if vars(target).get(name) is not value_:
                setattr(target, name, value_)
    else:
        target.__dict__.clear()
        target.__dict__.update(attributes)
        target.__defaults__ = defaults


BUILD_ON_GLOBALS = {
    "class attribute (slot state)": ("dnnlib.util", "EasyDict", (None, {"pwned": True})),
    "class attribute (dict state)": ("dnnlib.util", "EasyDict", {"pwned": True}),
    "function defaults (slot state)": ("torch._utils", "_rebuild_tensor_v2", (None, {"__defaults__": (42,)})),
    "function attribute (dict state)": ("torch._utils", "_rebuild_tensor_v2", {"__defaults__": (42,), "x": 1}),
    "builtin class": ("collections", "OrderedDict", (None, {"pwned": True})),
    "torch dtype": ("torch", "float32", (None, {"pwned": True})),
}


@pytest.mark.parametrize("case", BUILD_ON_GLOBALS)
def test_build_cannot_change_a_class_or_function(tmp_path, case):
    module, name, state = BUILD_ON_GLOBALS[case]
    target = checkpoints._ALLOWED_GLOBALS[(module, name)]
    path = write_pickle(tmp_path / "build.pkl", build(global_(module, name), value(state)))
    saved = snapshot(target) if hasattr(target, "__dict__") else None
    try:
        with pytest.raises(FacesteerError, match=f"^refusing to load {path}: .*{name}"):
            load_pickle(path)
    finally:
        changed = saved is not None and snapshot(target) != saved
        if changed:
            restore(target, saved)
    assert not changed, f"the pickle changed {module}.{name}"
    if name == "_rebuild_tensor_v2":
        assert torch._utils._rebuild_tensor_v2.__defaults__ == (None,)
    assert not hasattr(checkpoints._EasyDict, "pwned")


def test_build_on_instances_still_works(tmp_path):
    ordered = collections.OrderedDict(a=1)
    ordered.note = "an instance attribute, restored by BUILD"
    path = tmp_path / "instances.pkl"
    path.write_bytes(pickle.dumps({"ordered": ordered, "weight": torch.nn.Parameter(torch.ones(2, 3))}, protocol=4))
    loaded = load_pickle(path)
    assert loaded["ordered"] == ordered and loaded["ordered"].note == ordered.note
    assert isinstance(loaded["weight"], torch.nn.Parameter) and torch.equal(loaded["weight"], torch.ones(2, 3))


# --- tensors that run past their storage ---------------------------------------------------------------------


def tensor_view(storage_offset: int, size: tuple, stride: tuple) -> bytes:
    """``{"G_ema": t}`` with ``t`` a view of the storage ``[0., 1., 2., 3.]``, as torch pickles a tensor.

    The storage pickles as ``torch.storage._load_from_bytes`` of torch's legacy format, which loads as a
    resizable storage: torch's own ``_rebuild_tensor_v2`` would silently grow it to fit a view past its end.
    """
    tensor = call(
        global_("torch._utils", "_rebuild_tensor_v2"),
        value(torch.arange(4.0)._typed_storage()),  # what torch pickles for a tensor's storage
        value(storage_offset),
        value(size),
        value(stride),
        value(False),
        value(collections.OrderedDict()),
    )
    return value({}) + value("G_ema") + tensor + pickle.SETITEM


TENSOR_VIEWS = {
    "size past the end": (0, (1000,), (1,)),
    "offset past the end": (10, (1,), (1,)),
    "stride past the end": (0, (2, 2), (100, 1)),
    "negative offset": (-1, (1,), (1,)),
}


@pytest.mark.parametrize("case", TENSOR_VIEWS)
def test_tensor_view_past_its_storage_is_a_corrupt_pickle(tmp_path, run, case):
    path = write_pickle(tmp_path / "view.pkl", tensor_view(*TENSOR_VIEWS[case]))
    with pytest.raises(FacesteerError, match=f"^cannot read pickle {path}: corrupt") as error:
        load_pickle(path)
    assert "\n" not in str(error.value)
    result = run("generate", "--generator", str(path), "--out", str(tmp_path / "x.png"))
    one_line_error(result, "cannot read pickle", "corrupt")
    assert not (tmp_path / "x.png").exists()


def test_tensor_views_inside_their_storage_still_load(tmp_path):
    path = write_pickle(tmp_path / "view.pkl", tensor_view(1, (2,), (2,)))
    assert torch.equal(load_pickle(path)["G_ema"], torch.tensor([1.0, 3.0]))
    path = write_pickle(tmp_path / "empty.pkl", tensor_view(4, (0, 3), (3, 1)))
    assert load_pickle(path)["G_ema"].shape == (0, 3)


# --- Python 2 names (protocols 0 to 2) -----------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [0, 1, 2])
def test_old_protocols_with_python2_names_load(tmp_path, protocol):
    data = {"a": {1, 2}, "b": frozenset({3}), "c": [1.5, "text", (None, True)], "d": collections.OrderedDict(x=1)}
    pickled = pickle.dumps(data, protocol=protocol)
    assert b"__builtin__" in pickled  # what Python writes for set and frozenset at these protocols
    path = tmp_path / "old.pkl"
    path.write_bytes(pickled)
    assert load_pickle(path) == data


@pytest.mark.parametrize("protocol", [0, 2])
def test_old_protocols_still_refuse_other_globals(tmp_path, protocol):
    path = tmp_path / "eval.pkl"
    path.write_bytes(pickle.dumps({"f": eval}, protocol=protocol))
    with pytest.raises(FacesteerError, match=r"refusing to load .*__builtin__\.eval"):
        load_pickle(path)


def _pickle_bytes(opcodes: bytes) -> bytes:
    return b"\x80\x03" + opcodes + b"."


def _opcodes(value: Any) -> bytes:
    """The opcodes that build ``value`` (protocol 3: plain bytes, no frames), without PROTO and STOP."""
    return pickle.dumps(value, protocol=3)[2:-1]


@pytest.mark.parametrize(
    "case",
    [
        # Tensor.__setstate__ would call set_(storage, offset, size, stride): 1000 floats on a 4-float storage
        _opcodes(torch.zeros(4)) + _opcodes((torch.zeros(4).storage(), 0, torch.Size([1000]), (1,))) + pickle.BUILD,
        # _reconstruct(ndarray, (10**7, 10**7), b"b"): 91 TiB, a MemoryError traceback before
        b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nJ\x80\x96\x98\x00J\x80\x96\x98\x00\x86C\x01b\x87R",
        # bytearray(2**62)
        b"c__builtin__\nbytearray\n\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x40\x85R",
    ],
    ids=["tensor BUILD past its storage", "huge numpy shape", "huge bytearray"],
)
def test_tensor_build_and_huge_sizes_are_refused(tmp_path, case):
    path = tmp_path / "forged.pkl"
    path.write_bytes(_pickle_bytes(case))
    with pytest.raises(FacesteerError, match=r"forged\.pkl"):
        load_pickle(path)


# --- malformed generator checkpoints: one line naming the file, never a traceback or a huge allocation -----


def _facesteer_safetensors(path: Path, config: Any) -> Path:
    from safetensors.torch import save_file

    from facesteer.generators.stylegan2 import SAFETENSORS_FORMAT

    metadata = {"format": SAFETENSORS_FORMAT}
    if config is not None:
        metadata["config"] = config if isinstance(config, str) else json.dumps(config)
    save_file({"x": torch.zeros(1)}, str(path), metadata=metadata)
    return path


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (None, "KeyError"),  # no config at all
        ("{not json", "JSONDecodeError"),
        ([64], "TypeError"),
        ({"resolution": 64, "unknown": 1}, "TypeError"),
        ({"resolution": 64, "channels": {"4": 8}, "z_dim": 10**12}, "channels must give"),
        ({"resolution": 8, "channels": {"4": 8, "8": 8}, "z_dim": 10**12}, "z_dim and w_dim must be in"),
        ({"resolution": 8, "channels": {"4": 8, "8": 0}}, "channels must give"),  # a zero-channel layer
        ({"resolution": 2**20, "channels": {}}, "resolution must be a power of two"),
    ],
)
def test_a_malformed_facesteer_file_is_one_line(tmp_path, run, config, message):
    path = _facesteer_safetensors(tmp_path / "g.safetensors", config)
    one_line_error(run("generate", "-g", str(path), "--num", "1", "--out", str(tmp_path / "x.png")), message)


@pytest.mark.parametrize(
    "checkpoint",
    [
        {"g_ema": 3},  # not a state dict
        {"g_ema": {"style.1.weight": torch.zeros(8, 8), "conv1.conv.weight": torch.zeros(1, 8, 8, 3, 3)}},  # no convs
        {"g_ema": {"style.1.weight": torch.zeros(8), "conv1.conv.weight": torch.zeros(8)}},  # 1-d weights
        {1: torch.zeros(1), "a": torch.zeros(1)},  # keys that cannot be sorted together
    ],
)
def test_a_malformed_torch_checkpoint_is_one_line(tmp_path, run, checkpoint):
    path = tmp_path / "g.pt"
    torch.save(checkpoint, path)
    result = run("generate", "-g", str(path), "--num", "1", "--out", str(tmp_path / "x.png"))
    one_line_error(result, "g.pt")


# --- small files that asked for gigabytes (issue: bound every input's memory and time) -----------------------


def test_bytearray_is_not_a_global_a_pickle_may_build(tmp_path):
    """A 34-byte pickle built bytearray(3 GiB): the restricted unpickler allowed builtins.bytearray."""
    path = tmp_path / "forged.pkl"
    path.write_bytes(_pickle_bytes(b"cbuiltins\nbytearray\nK\x0a\x85R"))  # bytearray(10): the size is no matter
    with pytest.raises(FacesteerError, match=r"refusing to load .*builtins\.bytearray"):
        load_pickle(path)


def test_copyreg_reconstructor_only_rebuilds_plain_objects_and_dicts(tmp_path):
    """copyreg._reconstructor(cls, base, state) calls base.__new__(cls, state): any allowed base with a size."""
    path = tmp_path / "forged.pkl"
    # _reconstructor(OrderedDict, list, [1, 2])
    reconstruct = call(global_("copyreg", "_reconstructor"), global_("collections", "OrderedDict"),
                       global_("builtins", "list"), value([1, 2]))  # fmt: skip
    path.write_bytes(_pickle_bytes(reconstruct))
    with pytest.raises(FacesteerError, match="only object or dict"):
        load_pickle(path)
    path.write_bytes(pickle.dumps(collections.OrderedDict(a=1), protocol=0))  # how protocol 0 pickles a dict subclass
    assert load_pickle(path) == {"a": 1}


def _rewritten_archive(source: Path, target: Path, compression: int, replace: dict[str, bytes] | None = None) -> Path:
    import zipfile

    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", compression=compression) as new:
        for info in old.infolist():
            data = (replace or {}).get(info.filename.rsplit("/", 1)[-1], old.read(info))
            new.writestr(info.filename, data)
    return target


def test_a_torch_archive_with_compressed_records_is_refused(tmp_path):
    """A 2 MB .pt whose deflate record declared 2 GiB was inflated before anything compared the sizes."""
    import zipfile

    plain = tmp_path / "plain.pt"
    torch.save({"w": torch.zeros(1000)}, plain)
    assert checkpoints.load_torch_file(plain)["w"].shape == (1000,)
    packed = _rewritten_archive(plain, tmp_path / "packed.pt", zipfile.ZIP_DEFLATED)
    with pytest.raises(FacesteerError, match=r"packed\.pt: record .* is compressed"):
        checkpoints.load_torch_file(packed)
    # the same archive inside an NVIDIA pickle (torch.storage._load_from_bytes)
    path = tmp_path / "embedded.pkl"
    path.write_bytes(_pickle_bytes(call(global_("torch.storage", "_load_from_bytes"), value(packed.read_bytes()))))
    with pytest.raises(FacesteerError, match="is compressed"):
        load_pickle(path)


def test_a_torch_archive_whose_pickle_builds_a_bytearray_is_refused(tmp_path):
    import zipfile

    plain = tmp_path / "plain.pt"
    torch.save({"w": torch.zeros(4)}, plain)
    forged = _rewritten_archive(
        plain, tmp_path / "forged.pt", zipfile.ZIP_STORED, {"data.pkl": b"\x80\x02cbuiltins\nbytearray\nK\x0a\x85R."}
    )
    with pytest.raises(FacesteerError, match=r"refusing to load .*forged\.pt.*bytearray"):
        checkpoints.load_torch_file(forged)


def test_a_config_asking_for_a_huge_network_is_refused_before_it_is_built(tmp_path):
    """A 298-byte safetensors file whose config sat at every limit cost 5.7 GiB and 10 s: the network was built
    before its config was compared with the tensors the file holds."""
    channels = {str(2**i): 2048 for i in range(2, 11)}
    config = {"resolution": 1024, "channels": channels, "z_dim": 4096, "w_dim": 4096, "mapping_layers": 32}
    path = _facesteer_safetensors(tmp_path / "g.safetensors", config)
    script = (
        "import resource, sys\n"
        "from facesteer.errors import FacesteerError\n"
        "from facesteer.generators.stylegan2 import load_stylegan2_file\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n"
        f"    load_stylegan2_file({str(path)!r})\n"
        "except FacesteerError as error:\n"
        "    print(error)\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    message, growth_mib = result.stdout.strip().splitlines()
    assert "does not match the StyleGAN2 architecture read from it" in message and "missing" in message
    assert int(growth_mib) < 512  # over what the imports took (machines differ there); the network is 5.7 GiB


def test_tensors_that_do_not_fit_the_architecture_are_one_line(tmp_path, run):
    """torch's load_state_dict message (many lines) was embedded in the error."""
    config = {"resolution": 8, "channels": {"4": 8, "8": 8}, "z_dim": 4, "w_dim": 4, "mapping_layers": 1}
    path = _facesteer_safetensors(tmp_path / "g.safetensors", config)
    one_line_error(
        run("generate", "-g", str(path), "--num", "1", "--out", str(tmp_path / "x.png")),
        "does not match the StyleGAN2 architecture read from it",
        "missing (first ",
        "1 unexpected (first x)",
    )
    from facesteer.generators.dcgan import DCGANFaceGenerator

    dcgan = tmp_path / "dcgan.pt"
    torch.save({"netG_state_dict": {"main.0.weight": torch.zeros(3, 3)}}, dcgan)
    with pytest.raises(FacesteerError) as error:
        DCGANFaceGenerator(dcgan)
    assert "\n" not in str(error.value) and "does not match a 64x64 DCGAN" in str(error.value)
    assert "of another shape (first main.0.weight: (3, 3) in the file" in str(error.value)
