"""The convolutions of the recurrent step, on the path that is faster for their shape.

``step_conv2d(x, weight, bias, padding)`` is ``F.conv2d`` (stride 1, no dilation, one
group) for the per-frame convolutions of a generation loop; ``step_conv2d_ref`` is plain
``F.conv2d``, its reference. Both give the same values (up to float rounding: the two paths
sum in different orders).

Why a second path. For a float32 CPU convolution, PyTorch picks oneDNN (``mkldnn``) unless
the batch is 1, the kernel at most 3×3 and the input at most 20 480 elements; those go to its
native im2col + GEMM path (``_slow_conv2d_forward``). A generation step at batch 1 and
16×16 frames lands there. With several threads and other processes on the cores (the shared
2-core machine of docs/benchmarks.md, "Step convolutions"), the native path's GEMM at a
reduction length ``C_in·k_h·k_w`` of 432 or more took 3–10× its single-thread time
(64→64 channels, 3×3, 16×16: 1.3–2.4 ms against 0.21–0.38 ms on one thread), while
``torch.mkldnn_convolution`` on the same tensors stayed at 0.3–0.8 ms. Below that length,
or on one thread, oneDNN was not faster and costs a fixed ~70–100 µs per call (a 1×1
convolution: 100 µs against 12 µs), so the native path stays there.

The rule (:func:`step_conv_path`), read per call and cheap:

- ``"mkldnn"`` (``torch.mkldnn_convolution``) when oneDNN is available and enabled
  (``torch.backends.mkldnn``), the tensors are float32 on the CPU, no autograd graph is
  being recorded through them, no autocast is active (under CPU autocast ``F.conv2d`` runs
  in bfloat16, which PyTorch sends to oneDNN itself), nothing is being compiled, the
  batch is 1, ``torch.get_num_threads() > 1``, the kernel is larger than 1×1 with odd
  sides (so that "same" padding is symmetric), and ``C_in·k_h·k_w >= MKLDNN_MIN_REDUCTION``;
- ``"native"`` (``F.conv2d``, PyTorch's own choice) otherwise: float64, batch ≥ 2 (PyTorch
  already uses oneDNN there), one thread, 1×1 kernels, small reductions, training.

Under ``torch.compile`` the rule answers ``"native"``: Inductor lowers the convolution to
PyTorch's own choice, so a compiled step at batch 1 keeps the slow path. (Wrapping the
oneDNN call in a custom op for the compiler was tried: Inductor's channels-last layout
pass handed the op inputs in another layout than the traced one and its output failed
Inductor's stride check on the published model; not pursued.)

No exception is caught: a case the rule sends to oneDNN runs there or raises.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["MKLDNN_MIN_REDUCTION", "step_conv2d", "step_conv2d_ref", "step_conv_path"]

# C_in * k_h * k_w from which a batch-1 float32 convolution goes to oneDNN (48 channels at
# 3x3): measured on the shared 2-core machine, docs/benchmarks.md "Step convolutions".
MKLDNN_MIN_REDUCTION = 432


def step_conv_path(x: torch.Tensor, weight: torch.Tensor) -> str:
    """``"mkldnn"`` or ``"native"``: the path :func:`step_conv2d` takes for x (N, C_in, H, W)
    and weight (C_out, C_in, k_h, k_w) (the rule in the module docstring)."""
    c_in, k_h, k_w = weight.shape[1:]
    if (
        torch.compiler.is_compiling()  # first: the thread count is not traceable
        or x.dtype != torch.float32
        or weight.dtype != torch.float32
        or x.device.type != "cpu"
        or weight.device.type != "cpu"
        or x.shape[0] != 1
        or k_h * k_w == 1
        or k_h % 2 == 0
        or k_w % 2 == 0
        or c_in * k_h * k_w < MKLDNN_MIN_REDUCTION
        or torch.get_num_threads() < 2
        or not torch.backends.mkldnn.is_available()
        or not torch.backends.mkldnn.enabled
        or torch.is_autocast_enabled("cpu")
        or (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))
    ):
        return "native"
    return "mkldnn"


def _padding(padding: str | int | tuple[int, int], weight: torch.Tensor) -> tuple[int, int]:
    if padding == "same":
        return weight.shape[2] // 2, weight.shape[3] // 2
    if padding == "valid":
        return 0, 0
    if isinstance(padding, int):
        return padding, padding
    return tuple(padding)


def step_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    padding: str | int | tuple[int, int] = "same",
) -> torch.Tensor:
    """x (N, C_in, H, W), weight (C_out, C_in, k_h, k_w), bias (C_out,) or None ->
    (N, C_out, H', W'): ``F.conv2d(x, weight, bias, padding=padding)`` (stride 1, no
    dilation, one group) on the path :func:`step_conv_path` chooses."""
    if step_conv_path(x, weight) == "native":
        return F.conv2d(x, weight, bias, padding=padding)
    if not (x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last)):
        x = x.contiguous()
    return torch.mkldnn_convolution(
        x, weight.contiguous(), bias, _padding(padding, weight), (1, 1), (1, 1), 1
    )


def step_conv2d_ref(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    padding: str | int | tuple[int, int] = "same",
) -> torch.Tensor:
    """The reference of :func:`step_conv2d`: ``F.conv2d`` as PyTorch dispatches it."""
    return F.conv2d(x, weight, bias, padding=padding)
