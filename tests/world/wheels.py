"""Stub torch / torchvision / xformers wheels that behave like the real ones where sdboot
looks: local version labels (+cu121, +cpu), torch.version.cuda, torch.cuda.is_available()
asking the (fake) libcuda.so.1 for the driver's CUDA version and the devices, the
"driver too old" warning and the other "CUDA initialization:" warnings real torch gives
for each cuInit failure (803 driver/library mismatch, 3 driver not initialised; 100, no
device, is silent), get_arch_list(), "no kernel image" for GPUs the build has no kernels
for, NumPy's "compiled using NumPy 1.x" message when a torch built against NumPy 1.x
(< 2.3) meets NumPy 2, stub numpy wheels, and xformers metadata pinning the torch it was
built for."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

TORCH_INIT = '''"""Stub torch {version} built by sdboot's test world."""
from torch import version as version
from torch import cuda as cuda

__version__ = version.__version__
_NUMPY_ABI = {numpy_abi}  # the NumPy major version this build was compiled against


def _init_numpy():
    """Like torch's tensor_numpy.cpp at import: NumPy's C-API check prints NumPy's own
    message and torch warns, but the import goes on (.numpy() fails later)."""
    try:
        import numpy
    except ImportError:
        return
    import sys
    import warnings

    major = int(str(getattr(numpy, "__version__", "0")).split(".")[0] or 0)
    if _NUMPY_ABI < 2 <= major:
        sys.stderr.write(
            "\\nA module that was compiled using NumPy 1.x cannot be run in\\n"
            "NumPy %s as it may crash. To support both 1.x and 2.x\\n"
            "versions of NumPy, modules must be compiled with NumPy 2.0.\\n"
            "Some module may need to rebuild instead e.g. with 'pybind11>=2.12'.\\n\\n"
            "If you are a user of the module, the easiest solution will be to\\n"
            "downgrade to 'numpy<2' or try to upgrade the affected module.\\n"
            "We expect that some of your modules may need to be rebuilt.\\n" % numpy.__version__)
        warnings.warn("Failed to initialize NumPy: _ARRAY_API not found (Triggered internally "
                      "at ../torch/csrc/utils/tensor_numpy.cpp:84.)")


_init_numpy()


class Tensor:
    def __init__(self, values, device):
        self._values = list(values)
        self.device = device

    def __mul__(self, k):
        return Tensor([v * k for v in self._values], self.device)

    __rmul__ = __mul__

    def sum(self):
        return Tensor([sum(self._values)], self.device)

    def item(self):
        return self._values[0]


def ones(n, device="cpu"):
    if str(device).startswith("cuda"):
        cuda._launch_kernel()
    return Tensor([1.0] * n, str(device))
'''

TORCH_VERSION = '''__version__ = "{version}"
cuda = {cuda!r}
git_version = "stub"
'''

TORCH_CUDA = '''"""torch.cuda of the stub: asks the CUDA driver (libcuda.so.1) like the real one."""
import ctypes
import warnings

_BUILD_CUDA = {build_cuda!r}
_ARCH = {arch!r}
_lib = None
_INIT_ERRORS = {{
    3: "CUDA driver initialization failed, you might not have a CUDA gpu.",
    999: "CUDA unknown error - this may be due to an incorrectly set up environment, e.g. "
         "changing env variable CUDA_VISIBLE_DEVICES after program start. Setting the "
         "available devices to be zero.",
}}
_ERROR_STRINGS = {{803: "system has unsupported display driver / cuda driver combination",
                  804: "forward compatibility was attempted on non supported HW"}}


def _driver():
    global _lib
    if _lib is None:
        _lib = ctypes.CDLL("libcuda.so.1")
    return _lib


def _init():
    if _BUILD_CUDA is None:
        return 0
    try:
        lib = _driver()
    except OSError:
        return 0
    rc = lib.cuInit(0)
    if rc == 100:  # cudaErrorNoDevice: zero devices, no warning (c10/cuda/CUDAFunctions.cpp)
        return 0
    if rc != 0:
        warnings.warn("CUDA initialization: " + _INIT_ERRORS.get(rc, (
            "Unexpected error from cudaGetDeviceCount(). Did you run some cuda functions "
            "before calling NumCudaDevices() that might have already set an error? Error "
            "%d: %s" % (rc, _ERROR_STRINGS.get(rc, "unknown error")))))
        return 0
    found = ctypes.c_int()
    lib.cuDriverGetVersion(ctypes.byref(found))
    if found.value < _BUILD_CUDA:
        warnings.warn(
            "CUDA initialization: The NVIDIA driver on your system is too old (found version "
            "%d). Please update your GPU driver by downloading and installing a new version "
            "from the URL: http://www.nvidia.com/Download/index.aspx" % found.value)
        return 0
    count = ctypes.c_int()
    lib.cuDeviceGetCount(ctypes.byref(count))
    return count.value


def is_available():
    return _init() > 0


def device_count():
    return _init()


def get_device_name(device=0):
    buf = ctypes.create_string_buffer(256)
    _driver().cuDeviceGetName(buf, 256, device)
    return buf.value.decode()


def get_device_capability(device=0):
    major, minor = ctypes.c_int(), ctypes.c_int()
    _driver().cuDeviceGetAttribute(ctypes.byref(major), 75, device)
    _driver().cuDeviceGetAttribute(ctypes.byref(minor), 76, device)
    return (major.value, minor.value)


def get_arch_list():
    return list(_ARCH) if is_available() else []


def _launch_kernel():
    if _BUILD_CUDA is None:
        raise AssertionError("Torch not compiled with CUDA enabled")
    if not is_available():
        raise RuntimeError("No CUDA GPUs are available")
    major, minor = get_device_capability(0)
    sm = [a[3:] for a in _ARCH if a.startswith("sm_")]
    if not any(int(s[:-1]) == major and int(s[-1]) <= minor for s in sm):
        warnings.warn(
            "\\n%s with CUDA capability sm_%d%d is not compatible with the current PyTorch "
            "installation.\\nThe current PyTorch install supports CUDA capabilities %s."
            % (get_device_name(0), major, minor, " ".join(_ARCH)))
        raise RuntimeError("CUDA error: no kernel image is available for execution on the "
                           "device")
'''

VISION_INIT = '''import torch  # the real torchvision imports torch first

__version__ = "{version}"
'''

XFORMERS_INIT = '''import sys

import torch

__version__ = "{version}"
_BUILT_FOR = "{built_for}"
if torch.__version__.split("+")[0] != _BUILT_FOR.split("+")[0]:
    sys.stderr.write(
        "WARNING[XFORMERS]: xFormers can't load C++/CUDA extensions. xFormers was built for:\\n"
        "    PyTorch %s with CUDA None (you have %s)\\n" % (_BUILT_FOR, torch.__version__))
'''


@dataclass(frozen=True)
class StubStack:
    torch: str  # "2.1.2+cu121"
    torchvision: str
    xformers: str | None
    arch: tuple[str, ...]  # ("5.0", "8.6")
    ptx: bool = False

    @property
    def cuda(self) -> str | None:
        label = self.torch.partition("+")[2]
        if label.startswith("cu"):
            digits = label[2:]
            return f"{digits[:-1]}.{digits[-1]}"
        return None


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_wheel(out_dir: Path, name: str, version: str, files: dict[str, str],
                requires: Sequence[str] = ()) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    escaped = name.replace("-", "_")  # wheel file names keep dashes as separators
    dist_info = f"{escaped}-{version}.dist-info"
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}",
            "Summary: stub built by sdboot's test world"]
    meta += [f"Requires-Dist: {r}" for r in requires]
    contents = {path: text.encode() for path, text in files.items()}
    contents[f"{dist_info}/METADATA"] = ("\n".join(meta) + "\n").encode()
    contents[f"{dist_info}/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: sdboot-tests\n"
                                      b"Root-Is-Purelib: true\nTag: py3-none-any\n")
    record = [_record_line(p, d) for p, d in contents.items()] + [f"{dist_info}/RECORD,,"]
    contents[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = out_dir / f"{escaped}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for p, d in contents.items():
            zf.writestr(p, d)
    return path


def build_stack(out_dir: Path, stack: StubStack) -> dict[str, Path]:
    cuda = stack.cuda
    build_cuda = None
    if cuda:
        major, minor = cuda.split(".")
        build_cuda = int(major) * 1000 + int(minor) * 10
    arch = [f"sm_{a.replace('.', '')}" for a in stack.arch]
    if stack.ptx and arch:
        arch.append("compute_" + arch[-1][3:])
    base = stack.torch.split("+")[0]
    wheels = {
        "torch": build_wheel(out_dir, "torch", stack.torch, {
            "torch/__init__.py": TORCH_INIT.format(version=stack.torch,
                                                   numpy_abi=numpy_abi(stack.torch)),
            "torch/version.py": TORCH_VERSION.format(version=stack.torch, cuda=cuda),
            "torch/cuda/__init__.py": TORCH_CUDA.format(build_cuda=build_cuda, arch=arch),
        }),
        "torchvision": build_wheel(out_dir, "torchvision", stack.torchvision, {
            "torchvision/__init__.py": VISION_INIT.format(version=stack.torchvision),
        }, [f"torch=={base}"]),
    }
    if stack.xformers:
        wheels["xformers"] = build_wheel(out_dir, "xformers", stack.xformers, {
            "xformers/__init__.py": XFORMERS_INIT.format(version=stack.xformers,
                                                         built_for=stack.torch),
        }, [f"torch=={base}"])
    return wheels


def numpy_abi(torch_version: str) -> int:
    """The NumPy major version a torch release is compiled against: 2 from torch 2.3.0 on
    (the first release built against NumPy 2.0, pytorch/pytorch#107302), else 1."""
    major, minor = (int(p) for p in torch_version.split("+")[0].split(".")[:2])
    return 2 if (major, minor) >= (2, 3) else 1


def build_numpy(out_dir: Path, version: str) -> Path:
    """A stub numpy wheel: the version in its metadata and in numpy.__version__."""
    return build_wheel(out_dir, "numpy", version, {
        "numpy/__init__.py": f'"""Stub numpy {version}."""\n__version__ = "{version}"\n'})


# The stacks of the shipped profiles the tests use, with the architectures of FACTS.md.
CU121_ARCH = ("5.0", "6.0", "6.1", "7.0", "7.5", "8.0", "8.6", "9.0")
STACKS = {
    "cu117": StubStack("1.13.1+cu117", "0.14.1+cu117", "0.0.16rc425",
                       ("3.7", "5.0", "6.0", "6.1", "7.0", "7.5", "8.0", "8.6")),
    "cu118": StubStack("2.0.1+cu118", "0.15.2+cu118", "0.0.20",
                       ("3.7", "5.0", "6.0", "6.1", "7.0", "7.5", "8.0", "8.6", "9.0")),
    "cu121": StubStack("2.1.2+cu121", "0.16.2+cu121", "0.0.23.post1", CU121_ARCH),
    # Forge's stack, on the cu121 index (the key's part before "-" names the index)
    "cu121-forge": StubStack("2.3.1+cu121", "0.18.1+cu121", "0.0.27", CU121_ARCH),
    "cu128": StubStack("2.7.0+cu128", "0.22.0+cu128", "0.0.30",
                       ("7.5", "8.0", "8.6", "9.0", "10.0", "12.0")),
    "cpu": StubStack("2.1.2+cpu", "0.16.2+cpu", None, ()),
}
