"""Kernels, each beside its plain reference implementation."""

from convssm.ops.linear_scan import (
    get_scan_path,
    linear_scan,
    linear_scan_ref,
    scan_path,
    set_scan_path,
)
from convssm.ops.linear_scan_triton import linear_scan_triton, triton_available
from convssm.ops.step_conv import step_conv2d, step_conv2d_ref, step_conv_path

__all__ = [
    "get_scan_path",
    "linear_scan",
    "linear_scan_ref",
    "linear_scan_triton",
    "scan_path",
    "set_scan_path",
    "step_conv2d",
    "step_conv2d_ref",
    "step_conv_path",
    "triton_available",
]
