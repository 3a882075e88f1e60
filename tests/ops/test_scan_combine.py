"""The associative operator of the recurrence composes steps, in both forms."""

from __future__ import annotations

import torch

from convssm.ops import linear_scan_ref
from convssm.ops.scan_combine import combine_complex, combine_real_imag


def _steps(n: int = 5, m: int = 4):
    gen = torch.Generator().manual_seed(0)
    a = torch.complex(torch.rand(n, m, generator=gen), torch.rand(n, m, generator=gen)) * 0.9
    b = torch.complex(torch.randn(n, m, generator=gen), torch.randn(n, m, generator=gen))
    return a, b


def test_folding_the_operator_runs_the_recurrence():
    a, b = _steps()
    acc = (a[0], b[0])
    for k in range(1, len(a)):
        acc = combine_complex(acc, (a[k], b[k]))
    x = torch.zeros_like(b[0])
    for k in range(len(a)):
        x = a[k] * x + b[k]
    torch.testing.assert_close(acc[1], x)
    torch.testing.assert_close(acc[0], a.prod(0))


def test_real_imag_form_agrees_with_complex():
    a, b = _steps()
    left, right = (a[0], b[0]), (a[1], b[1])
    ca, cb = combine_complex(left, right)
    parts = combine_real_imag(
        (a[0].real, a[0].imag, b[0].real, b[0].imag), (a[1].real, a[1].imag, b[1].real, b[1].imag)
    )
    torch.testing.assert_close(torch.complex(parts[0], parts[1]), ca)
    torch.testing.assert_close(torch.complex(parts[2], parts[3]), cb)


def test_matches_the_reference_scan_with_a_shared_decay():
    a, b = _steps()
    shared = a[0]
    acc = (shared, b[0])
    outs = [b[0]]
    for k in range(1, len(b)):
        acc = combine_complex(acc, (shared, b[k]))
        outs.append(acc[1])
    torch.testing.assert_close(torch.stack(outs), linear_scan_ref(shared, b))
