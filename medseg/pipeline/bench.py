"""``medseg bench``: medseg's sliding-window engine against MONAI's ``sliding_window_inference``.

Also ``python benchmarks/bench_sliding_window.py [--device cuda]``. Prints one table; not a test.

Both engines run the same MONAI ``BasicUNet`` (features (16, 16, 32, 64, 128, 16) on the CPU,
(32, 32, 64, 128, 256, 32) on CUDA) on the same random input, with the same roi, overlap,
window batch and Gaussian importance map (medseg's, passed to MONAI as ``roi_weight_map``).
The image sizes are chosen so that MONAI's window grid (steps from the origin) equals medseg's
(evenly spread), so fp32 outputs must agree to float rounding ("max diff", against MONAI
fp32). Runs are interleaved (MONAI, medseg, MONAI, ...) and the fastest of ``repeat`` is
kept; its CPU time is shown beside the wall time (CPU time well above wall x threads, or wall
well above CPU / threads, means the machine was shared).

Compiled engines (``--compile``): ``MONAI-c`` is MONAI's ``sliding_window_inference`` given
``torch.compile(net, options={"freezing": True})``, the one line a MONAI user adds (weights
frozen as constants: inductor's CPU convolutions with prepacked weights), and ``medseg-c``
is ``SlidingWindow(compile=True)``. Each compiled engine runs in a process of its own (two
compiled wrappers of one network class in one process share dynamo's per-code cache), its
first call, which compiles, is reported in the ``first s`` column, and every row gives its
speed-up over MONAI eager (``xMONAI``) and MONAI compiled (``xMONAI-c``) at its precision.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` during the call; on the CPU the
highest resident set size during the call (the kernel's high-water mark, and RSS sampled every
2 ms), minus the RSS before it (input already allocated). On the CPU each engine of a
labels-only case runs in a fresh process, so that no engine reuses memory another one freed
(the allocator keeps freed pages: in one process the second engine's growth reads too low).
The "labels" case compares labels-only prediction of a 384^3 volume with 8 classes (a small
network, so that the 1331 windows finish in minutes on a CPU) with MONAI building the full
8-class output; MONAI's argmax is taken after its time and memory are measured, in its favour.
"""

from __future__ import annotations

import math
import multiprocessing
import resource
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from monai.inferers import sliding_window_inference
from monai.networks.nets import BasicUNet

from medseg.device import resolve_device
from medseg.errors import ConfigError
from medseg.infer.sliding_window import SlidingWindow
from medseg.infer.tiling import importance_map, window_starts

__all__ = ["CPU_CASES", "GPU_CASES", "Case", "bench_sliding_window"]

_CPU_FEATURES = (16, 16, 32, 64, 128, 16)
_GPU_FEATURES = (32, 32, 64, 128, 256, 32)
_SMALL_FEATURES = (4, 4, 8, 8, 16, 4)


@dataclass(frozen=True)
class Case:
    """One benchmark job: an image shape ``(N, C, *spatial)``, window, overlap, batch and network."""

    name: str
    shape: tuple[int, ...]
    roi: tuple[int, ...]
    overlap: float
    batch_size: int
    features: tuple[int, ...]
    classes: int = 2
    labels_only: bool = False


CPU_CASES = [
    Case("2D 1024^2", (1, 1, 1024, 1024), (256, 256), 0.5, 4, _CPU_FEATURES),
    Case("3D 96x160x160", (1, 1, 96, 160, 160), (64, 64, 64), 0.5, 4, _CPU_FEATURES),
    Case("3D 384^3 labels", (1, 1, 384, 384, 384), (64, 64, 64), 0.5, 4, _SMALL_FEATURES, 8, True),
]
GPU_CASES = [
    Case("2D 4352^2", (1, 1, 4352, 4352), (512, 512), 0.25, 8, _GPU_FEATURES),
    Case("3D 256^3", (1, 1, 256, 256, 256), (128, 128, 128), 0.5, 4, _GPU_FEATURES),
    Case("3D 384^3 labels", (1, 1, 384, 384, 384), (128, 128, 128), 0.5, 4, _GPU_FEATURES, 8, True),
]

_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


class _PeakMemory:
    """Peak memory used during a block: CUDA allocations, or sampled RSS growth on the CPU."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak = 0

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss() - self._start)
            self._stop.wait(0.002)

    def __enter__(self) -> _PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._start = torch.cuda.memory_allocated()
        else:
            self._start = self._rss()
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self._start
        else:
            self._stop.set()
            self._thread.join()
            high_water = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
            self.peak = max(self.peak, high_water - self._start)


@dataclass
class _Timing:
    wall: float = math.inf
    cpu: float = 0.0
    memory: int = 0
    first: float = 0.0
    output: torch.Tensor | None = None


def _engine(case: Case, device: torch.device, key: tuple[str, str]) -> Callable:
    """One engine ``(name, precision)`` of a case, with the case's network (seeded: the same in every process)."""
    name, precision = key
    spatial_dims = len(case.roi)
    torch.manual_seed(0)
    model = BasicUNet(
        spatial_dims=spatial_dims, in_channels=1, out_channels=case.classes, features=case.features
    )
    model = model.to(device).eval()
    dtype = _DTYPES[precision]
    if name == "net-c":
        return _network_alone(case, device, model, dtype)
    if name in ("MONAI", "MONAI-c"):
        weights = torch.from_numpy(importance_map(case.roi, "gaussian")).to(device)
        # what a MONAI user writes: the compiled module, weights frozen (inference only)
        net = torch.compile(model, options={"freezing": True}) if name == "MONAI-c" else model

        def monai(image):
            with torch.inference_mode(), torch.autocast(device.type, dtype, enabled=dtype != torch.float32):
                return sliding_window_inference(
                    image, case.roi, case.batch_size, net, overlap=case.overlap, roi_weight_map=weights
                )

        return monai
    window = SlidingWindow(
        case.roi,
        overlap=case.overlap,
        batch_size=case.batch_size,
        device=str(device),
        precision={"fp32": "float32", "bf16": "bfloat16"}[precision],
        channels_last=True if name == "medseg-cl" else None,
        compile=name == "medseg-c",
    )

    def medseg(image):
        return window.predict_labels(model, image) if case.labels_only else window(model, image)

    return medseg


def _network_alone(case: Case, device: torch.device, model: torch.nn.Module, dtype: torch.dtype) -> Callable:
    """The case's windows through the compiled network and nothing else: no engine can run them faster.

    As many windows as the case has, in full batches through ``torch.compile(net, freezing)``
    and a last partial batch through the uncompiled network (no recompilation), on one random
    batch; no gathering, weighting or blending. Returns no output.
    """
    windows = case.shape[0] * math.prod(
        len(window_starts(size, roi, case.overlap))
        for size, roi in zip(case.shape[2:], case.roi, strict=True)
    )
    full, rest = divmod(windows, case.batch_size)
    net = torch.compile(model, options={"freezing": True})
    generator = torch.Generator().manual_seed(2)
    batch = torch.randn((case.batch_size, case.shape[1], *case.roi), generator=generator).to(device)

    def network(image):
        with torch.inference_mode(), torch.autocast(device.type, dtype, enabled=dtype != torch.float32):
            for _ in range(full):
                net(batch)
            if rest:
                model(batch[:rest])

    return network


def _keys(case: Case, device: torch.device, precisions: list[str], compile: bool) -> list[tuple[str, str]]:
    """The engines of a case, MONAI's first at each precision."""
    names = ["MONAI", "medseg"]
    if device.type == "cuda" and not case.labels_only:  # eager channels-last: measured here only
        names.append("medseg-cl")
    if compile and not case.labels_only:
        names[1:1] = ["MONAI-c"]
        names += ["medseg-c", "net-c"]
    return [
        (name, precision) for precision in (["fp32"] if case.labels_only else precisions) for name in names
    ]


def _input(case: Case, device: torch.device) -> torch.Tensor:
    """The case's random image, the same in every process."""
    return torch.randn(case.shape, generator=torch.Generator().manual_seed(1)).to(device)


def _measure(fn: Callable, image: torch.Tensor, device: torch.device, timing: _Timing, first: bool) -> None:
    """One call of ``fn``: keep the fastest time, the peak memory, and the first call's output."""
    _sync(device)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    with _PeakMemory(device) as memory:
        out = fn(image)
        _sync(device)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    timing.memory = max(timing.memory, memory.peak)
    if first:
        timing.first = wall
        timing.output = out
    elif wall < timing.wall:
        timing.wall, timing.cpu = wall, cpu


class _InProcess:
    """An engine run in this process."""

    def __init__(self, case: Case, device: torch.device, key: tuple[str, str], image: torch.Tensor) -> None:
        self.case, self.device, self.image = case, device, image
        self.fn = _engine(case, device, key)
        self.timing = _Timing()

    def call(self, first: bool) -> None:
        _measure(self.fn, self.image, self.device, self.timing, first)
        if first:
            self.timing.output = _labels(self.timing.output, self.case)

    def close(self) -> None:
        del self.fn, self.image


class _Worker:
    """An engine in a fresh process of its own, called on request (interleaved with the others).

    A compiled engine must not share a process with another one: two compiled wrappers of
    modules with the same code share dynamo's per-code cache (the second one can hit the
    recompile limit and fall back to eager). On the CPU a process of its own also gives an
    engine its own allocator, so that its peak memory is not read too low.
    """

    def __init__(self, case: Case, device: torch.device, key: tuple[str, str]) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=_serve, args=(child, case, str(device), key, torch.get_num_threads()), daemon=True
        )
        self.process.start()
        child.close()
        self.timing = _Timing()

    def call(self, first: bool) -> None:
        self.conn.send(first)
        reply = self.conn.recv()
        if isinstance(reply, BaseException):
            raise reply
        reply.output = self.timing.output if reply.output is None else reply.output
        self.timing = reply

    def close(self) -> None:
        self.conn.send(None)
        self.process.join()


def _serve(conn, case: Case, device: str, key: tuple[str, str], threads: int) -> None:
    """The worker process: build one engine, then run it once per request until told to stop."""
    try:
        torch.set_num_threads(threads)
        engine = _InProcess(case, torch.device(device), key, _input(case, torch.device(device)))
        while (first := conn.recv()) is not None:
            engine.call(first)
            conn.send(engine.timing)
            engine.timing.output = None  # sent once, with the first call
    except Exception as exc:  # noqa: BLE001 - handed to the parent, which raises it
        conn.send(exc)
    finally:
        conn.close()


def _labels(out: torch.Tensor | None, case: Case) -> torch.Tensor | None:
    """MONAI's labels are taken outside the measurement (in its favour)."""
    if out is None:  # the network alone gives no image
        return None
    return out.argmax(dim=1).to(torch.uint8) if out.is_floating_point() and case.labels_only else out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_sliding_window(
    *,
    device: str | None = None,
    repeat: int = 2,
    cases: list[Case] | None = None,
    precisions: tuple[str, ...] = ("fp32", "bf16"),
    names: tuple[str, ...] = (),
    compile: bool = False,
) -> Iterator[str]:
    """Yield the lines of the comparison table, one row per case, engine and precision.

    Parameters
    ----------
    device : str, optional
        ``cpu`` or ``cuda``; default CUDA when available.
    repeat : int
        Timed runs per engine after one warm-up, interleaved across engines; the fastest counts.
    cases : list of Case, optional
        Default :data:`CPU_CASES` or :data:`GPU_CASES` by device.
    precisions : tuple of str
        ``fp32`` and/or ``bf16`` (autocast for both engines).
    names : tuple of str
        Only the cases whose name starts with one of these.
    compile : bool
        Add compiled rows: ``MONAI-c``, MONAI's inferer given
        ``torch.compile(net, options={"freezing": True})`` (what a MONAI user writes), and
        ``medseg-c``, medseg's engine with ``compile=True``, and ``net-c``, the case's windows
        through the compiled network alone (:func:`_network_alone`): the floor of any engine that
        runs this network on these windows. Each compiled engine runs in a process of its own;
        the first call (which compiles) is the ``first s`` column.

    Every row gives its speed-up (wall time) over MONAI eager and, with ``compile``, over
    MONAI compiled, at the same precision. On CUDA, ``medseg-cl`` rows run the uncompiled
    engine with ``channels_last=True`` (:func:`medseg.infer.layout.channels_last_view`),
    measured slower than NC(D)HW on an H200 (0.61-0.86x), which is why eager CUDA keeps NC(D)HW.
    """
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
        raise ConfigError(f"--repeat must be a whole number >= 1 (timed runs per engine), got {repeat!r}")
    device = resolve_device(device, option="--device")
    cases = cases if cases is not None else (GPU_CASES if device.type == "cuda" else CPU_CASES)
    known = [c.name for c in cases]
    cases = [c for c in cases if not names or c.name.startswith(names)]
    if not cases:
        raise ConfigError(f"--case {' '.join(names)} matches no case; known cases: {', '.join(known)}")
    label = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu, {torch.get_num_threads()} threads"
    )
    yield f"device {label}; best of {repeat} interleaved runs after a first call"
    yield (
        "engines: MONAI-c = MONAI given torch.compile(net, freezing); medseg-c = medseg compile=True; "
        "net-c = the same windows through the compiled network alone (no engine can be faster)"
    )
    yield (
        f"{'case':<17} {'engine':<9} {'prec':<5} {'wall s':>8} {'cpu s':>8} {'first s':>8} {'Mvox/s':>8} "
        f"{'xMONAI':>7} {'xMONAI-c':>8} {'max diff':>9} {'agree %':>8} {'peak MB':>8}"
    )
    for case in cases:
        keys = _keys(case, device, list(precisions), compile)
        image = None
        engines = {}
        for key in keys:
            if key[0].endswith("-c") or (case.labels_only and device.type == "cpu"):
                engines[key] = _Worker(case, device, key)
            else:
                image = _input(case, device) if image is None else image
                engines[key] = _InProcess(case, device, key, image)
        try:
            for run in range(repeat + 1):  # interleaved: MONAI, medseg, MONAI, ...; the first call apart
                for engine in engines.values():
                    engine.call(first=run == 0)
        finally:
            for engine in engines.values():
                engine.close()
        yield from _rows(case, {key: engine.timing for key, engine in engines.items()})
        del engines, image


def _rows(case: Case, timings: dict[tuple[str, str], _Timing]) -> Iterator[str]:
    """The table rows of one case."""
    reference = timings[("MONAI", "fp32")].output if ("MONAI", "fp32") in timings else None
    voxels = math.prod(case.shape[2:]) * case.shape[0]
    for (engine, precision), timing in timings.items():
        speedups = [
            f"{timings[(anchor, precision)].wall / timing.wall:.2f}x"
            if (anchor, precision) in timings
            else "-"
            for anchor in ("MONAI", "MONAI-c")
        ]
        diff, agree = "-", "-"
        if reference is not None and timing.output is not None:
            out, ref = timing.output, reference
            if case.labels_only:
                agree = f"{(out.long().cpu() == ref.long().cpu()).double().mean().item() * 100:.3f}"
            else:
                diff = f"{(out.float().cpu() - ref.float().cpu()).abs().max().item():.1e}"
                agree = f"{(out.argmax(1).cpu() == ref.argmax(1).cpu()).double().mean().item() * 100:.3f}"
        yield (
            f"{case.name:<17} {engine:<9} {precision:<5} {timing.wall:>8.3f} {timing.cpu:>8.2f} "
            f"{timing.first:>8.2f} {voxels / timing.wall / 1e6:>8.2f} {speedups[0]:>7} {speedups[1]:>8} "
            f"{diff:>9} {agree:>8} {timing.memory / 2**20:>8.0f}"
        )
