"""The clamped log-sum-exp agrees with torch's, including rows of −inf and far-underflowing terms."""

from __future__ import annotations

import torch

from genviz.numerics import logsumexp


def test_matches_torch_logsumexp() -> None:
    x = torch.randn(50, 300, dtype=torch.float64) * 400  # most terms far below each row's maximum
    x[3] = -torch.inf
    x[4, :10] = -torch.inf
    torch.testing.assert_close(logsumexp(x, 1), torch.logsumexp(x, 1), rtol=1e-12, atol=0)
    torch.testing.assert_close(logsumexp(x.float(), 0), torch.logsumexp(x.float(), 0))
    assert logsumexp(x, 1)[3] == -torch.inf
    with_inf = torch.tensor([[0.0, torch.inf], [torch.nan, 1.0]])
    assert logsumexp(with_inf, 1)[0] == torch.inf and logsumexp(with_inf, 1)[1].isnan()
