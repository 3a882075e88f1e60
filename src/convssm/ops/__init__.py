"""Kernels, each beside its plain reference implementation."""

from convssm.ops.linear_scan import linear_scan, linear_scan_ref

__all__ = ["linear_scan", "linear_scan_ref"]
