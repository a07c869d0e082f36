"""Lazy build and load of the fused kernels of the linearized sampler (CPU and CUDA).

The backward pass of :func:`sampling.linearized_grid_sample` on CPU runs
``csrc/linearized_fit.cpp`` (one pass over the output pixels: footprint, the
``K`` auxiliary bilinear samples, masking, the five sums and the 2x2 solve), built
with :func:`torch.utils.cpp_extension.load` the first time it is needed (about
10-20 s; needs a C++ compiler with OpenMP and ``ninja``); on a GPU it runs the same
computation from ``csrc/linearized_fit_cuda.cu`` (one thread per output pixel; needs
``nvcc``; CI never builds it). Both are cached in torch's
extensions directory (``$TORCH_EXTENSIONS_DIR``, default
``~/.cache/torch_extensions``) under a name that hashes the source and the flags,
so an edited source or another torch gets its own build.

* A build that really compiles (no library of that name in the build directory
  yet) first prints one line to stderr, :data:`COMPILING_MESSAGE`, so the
  first-use pause has a reason; a cached build prints nothing.
* ``STNLAB_NO_EXT=1`` (any value but empty or ``0``) skips the build and makes every
  call use the eager PyTorch path (the reference implementation).
* If the build or the load fails (no compiler, no ninja, ...), one
  :class:`ExtensionUnavailableWarning` says why and the eager path is used for the
  rest of the process.
* Processes that build at once (``pytest -n 2``) are serialized by torch's lock file
  in the build directory; a lock older than :data:`STALE_LOCK_SECONDS` (left by a
  killed build) is removed so no process waits on it forever.

Prebuild, e.g. in a Docker image: ``python -c "import sampling._ext as e; e.load()"``
(``e.load("cuda")`` for the GPU kernel).
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import time
import warnings
from pathlib import Path

import torch

__all__ = ["load", "fit", "reset", "disabled", "status", "ExtensionUnavailableWarning",
           "SOURCE", "KERNELS", "STALE_LOCK_SECONDS", "COMPILING_MESSAGE"]

#: The kernel's source, shipped as package data.
SOURCE = Path(__file__).with_name("csrc") / "linearized_fit.cpp"

#: -ffp-contract=off: no fused multiply-adds, so the result does not depend on whether
#: the CPU has FMA (the AVX-512, AVX2 and portable copies of the loops agree bit for bit).
_CFLAGS = ["-O3", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math", "-fopenmp"]
# libgomp: the same soname as the copy torch loads, so OpenMP threads are torch's.
_LDFLAGS = ["-fopenmp"]

#: Printed to stderr (one line) when a kernel is about to be compiled, not when it is cached.
COMPILING_MESSAGE = {
    "cpu": "stnlab: compiling the linearized sampler's kernel (once, ~15 s)\u2026",
    "cuda": "stnlab: compiling the linearized sampler's CUDA kernel (once, a minute or two)\u2026",
}

#: A build lock older than this (seconds) is taken to be left by a killed build.
STALE_LOCK_SECONDS = 900.0

#: Which copy of the CPU kernel's loops runs: 0 the best this CPU has (AVX-512 for float32,
#: else AVX2, else portable), 1 at most AVX2, 2 the portable one (tests: all copies must
#: agree bit for bit).
isa = 0


class ExtensionUnavailableWarning(UserWarning):
    """The fused kernel could not be built or loaded; the eager path is used."""


_lock = threading.Lock()

#: The kernels: ``"cpu"`` (``csrc/linearized_fit.cpp``, g++ + OpenMP) and ``"cuda"``
#: (``csrc/linearized_fit_cuda.cu``, nvcc; only tried where CUDA is available). The CUDA
#: kernel is compiled with ``--fmad=false`` for the same reason as ``-ffp-contract=off``.
KERNELS = {
    "cpu": dict(source=SOURCE, cflags=_CFLAGS, cuda_cflags=[], ldflags=_LDFLAGS,
                ops=("fit", "simd", "sample", "fit_calls")),
    "cuda": dict(source=SOURCE.with_name("linearized_fit_cuda.cu"), cflags=["-O3"],
                 cuda_cflags=["-O3", "--fmad=false"], ldflags=[], ops=("fit",)),
}


def _fresh() -> dict:
    # fused_calls counts the Python calls of fit(); fit_calls_base is the C++ counter of
    # the backward passes of ops.sample (see :func:`status`) at the last reset.
    return {"tried": False, "ops": None, "error": None, "build_seconds": None, "name": None,
            "fused_calls": 0, "fit_calls_base": None}


_states: dict = {kind: _fresh() for kind in KERNELS}


def disabled() -> bool:
    """Whether ``STNLAB_NO_EXT`` asks for the eager path."""
    return os.environ.get("STNLAB_NO_EXT", "").strip() not in ("", "0")


def _name(kind: str = "cpu") -> str:
    k = KERNELS[kind]
    h = hashlib.sha256()
    for f in (k["source"], SOURCE.with_name("linearized_fit_common.h")):  # and what it includes
        h.update(f.read_bytes())
    h.update(repr((k["cflags"], k["cuda_cflags"], k["ldflags"], torch.__version__,
                   sys.version_info[:2])).encode())
    suffix = "" if kind == "cpu" else f"_{kind}"
    return f"stnlab_linearized_fit{suffix}_{h.hexdigest()[:12]}"


def _build_directory(name: str, kind: str = "cpu") -> str:
    from torch.utils import cpp_extension

    root = os.environ.get("TORCH_EXTENSIONS_DIR") or cpp_extension.get_default_build_root()
    d = os.path.join(root, f"py{sys.version_info.major}{sys.version_info.minor}_{kind}", name)
    os.makedirs(d, exist_ok=True)
    return d


def _clear_stale_lock(build_dir: str) -> None:
    lock = os.path.join(build_dir, "lock")
    try:
        age = time.time() - os.path.getmtime(lock)
    except OSError:
        return  # no lock
    if age > STALE_LOCK_SECONDS:
        warnings.warn(f"stnlab: removing a stale build lock ({lock}, {age:.0f} s old)",
                      ExtensionUnavailableWarning, stacklevel=3)
        try:
            os.remove(lock)
        except OSError:
            pass


def _is_built(build_dir: str, name: str) -> bool:
    """Whether the library ``name`` is already in ``build_dir`` (then ``load`` compiles
    nothing: ``name`` hashes the source and the flags, so the library is up to date)."""
    from importlib.machinery import EXTENSION_SUFFIXES

    return any(os.path.isfile(os.path.join(build_dir, name + suffix))
               for suffix in {".so", ".pyd", ".dylib", *EXTENSION_SUFFIXES})


def _register_vmap(name: str) -> None:
    """A ``torch.func.vmap`` rule for ``name::fit``: the vmapped dimension joins the batch.

    Without it, ``vmap(grad(...))`` of the linearized sampler runs ``fit`` once per
    slice through functorch's fallback, with PyTorch's "performance drop ... batching
    rule" warning. Folding is exact: ``fit`` treats every image of the batch alike
    and independently (one noise field shared by all), so the slices of ``B * N``
    images are the ``B`` separate calls. A vmapped ``noise`` (never made by
    :mod:`sampling.linearized`) is looped over instead.
    """
    if name in _vmap_registered:  # a second build of the same library (after reset())
        return
    ops = getattr(torch.ops, name)

    def fit_vmap(info, in_dims, input, grid, grad_out, output, noise, *scalars):
        b = info.batch_size
        tensors = (input, grid, grad_out, output)
        if in_dims[4] is not None:  # one noise field per slice: a loop, not a fold
            sliced = [[t.select(d, i) if d is not None else t
                       for t, d in zip((*tensors, noise), in_dims[:5])] for i in range(b)]
            return torch.stack([ops.fit(*[t.contiguous() for t in a], *scalars)
                                for a in sliced]), 0

        def fold(x, d):  # (.., B at d, ..) -> (B * N, ...)
            x = x.movedim(d, 0) if d is not None else x.expand(b, *x.shape)
            return x.reshape(b * x.shape[1], *x.shape[2:]).contiguous()

        out = ops.fit(*[fold(t, d) for t, d in zip(tensors, in_dims[:4])], noise, *scalars)
        return out.reshape(b, -1, *out.shape[1:]), 0

    torch.library.register_vmap(f"{name}::fit", fit_vmap)
    _vmap_registered.add(name)


_vmap_registered: set[str] = set()


def _build(kind: str = "cpu"):
    from torch.utils import cpp_extension

    k = KERNELS[kind]
    name = _name(kind)
    build_dir = _build_directory(name, kind)
    _clear_stale_lock(build_dir)
    if not _is_built(build_dir, name):
        print(COMPILING_MESSAGE[kind], file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    define = f"-DSTNLAB_OPS_NAMESPACE={name}"
    cpp_extension.load(name=name, sources=[str(k["source"])],
                       extra_cflags=k["cflags"] + [define],
                       extra_cuda_cflags=k["cuda_cflags"] + [define] if kind == "cuda" else None,
                       # a copy: torch appends its own libraries to this list in place,
                       # which changed _name() (and rebuilt) at a second load after reset()
                       extra_ldflags=list(k["ldflags"]), build_directory=build_dir,
                       is_python_module=False, verbose=False)
    ops = getattr(torch.ops, name)
    for op in k["ops"]:  # resolve now: a missing op is a load failure
        getattr(ops, op)
    _register_vmap(name)
    _states[kind]["build_seconds"] = time.perf_counter() - t0
    _states[kind]["name"] = name
    return ops


def load(kind: str = "cpu"):
    """The ``kind`` kernel's op namespace (``ops.fit``; the CPU one also ``ops.simd``), or
    ``None`` for the eager path.

    Builds at the first call (thread-safe); a failure warns once and is remembered.
    """
    if disabled():
        return None
    st = _states[kind]
    if not st["tried"]:
        with _lock:
            if not st["tried"]:
                try:
                    if kind == "cuda" and not torch.cuda.is_available():
                        raise RuntimeError("CUDA is not available")
                    st["ops"] = _build(kind)
                    if kind == "cpu":
                        st["fit_calls_base"] = st["ops"].fit_calls()
                except Exception as exc:  # no compiler, no ninja, a compile error, ...
                    text = str(exc).strip().splitlines()
                    reason = f"{type(exc).__name__}: {text[0] if text else ''}"[:500]
                    st["error"] = reason
                    warnings.warn(f"stnlab: the fused {kind.upper()} kernel of "
                                  f"linearized_grid_sample is unavailable ({reason}); using "
                                  "the eager PyTorch path (several times slower). Set "
                                  "STNLAB_NO_EXT=1 to skip the build.",
                                  ExtensionUnavailableWarning, stacklevel=2)
                st["tried"] = True
    return st["ops"]


def fit(kind: str, *args):
    """Run the ``kind`` kernel's ``fit`` (no autograd) and count the call, or return ``None``
    when the kernel is unavailable (the caller then takes the eager path).

    ``args``: the op's arguments up to ``align_corners``; on CPU optionally followed by
    ``(sigma, 1/ux, 1/uy)``, the scale of the raw ``N(0, 1)`` noise variates that the CPU
    kernel applies itself (the CUDA one takes them scaled); ``isa`` is inserted here."""
    ops = load(kind)
    if ops is None:
        return None
    _states[kind]["fused_calls"] += 1
    if kind == "cpu":
        args = (*args[:11], int(isa), *args[11:])
    if not torch.is_grad_enabled():  # the usual case: called from a backward
        return ops.fit(*args)
    with torch.no_grad():
        return ops.fit(*args)


#: This module's own :func:`fit`: ``sampling.linearized`` runs its C++ autograd op
#: (``ops.sample``, which calls the kernel without this function) only while ``fit`` is
#: this one, so a wrapped ``fit`` (a test's fault injection, a probe) sees every call.
_OWN_FIT = fit


def reset(kind: str | None = None) -> None:
    """Forget the load attempt of ``kind`` (default: every kernel); for tests."""
    with _lock:
        for k in ([kind] if kind else list(_states)):
            _states[k].update(_fresh())


def status(kind: str = "cpu") -> dict:
    """``{"tried", "available", "error", "build_seconds", "name", "fused_calls", "disabled"}``.

    ``fused_calls`` counts the backward passes that ran the kernel since the last
    :func:`reset`; ``build_seconds`` is the time :func:`load` took (compile, or a cache hit).
    """
    st = _states[kind]
    calls = st["fused_calls"]
    if st["ops"] is not None and hasattr(st["ops"], "fit_calls"):
        calls += st["ops"].fit_calls() - (st["fit_calls_base"] or 0)
    return {"tried": st["tried"], "available": st["ops"] is not None,
            "error": st["error"], "build_seconds": st["build_seconds"],
            "name": st["name"], "fused_calls": calls,
            "disabled": disabled()}
