"""check_finite_result counts non-finite entries over chunks exactly, for tensors and arrays."""

import numpy as np
import pytest
import torch

from tensorkit.validation import NonFiniteResultError, _count_non_finite, check_finite_result


@pytest.mark.parametrize("chunk", [1, 3, 7, 1000])
def test_chunked_count_matches_the_whole_count(chunk):
    rng = np.random.default_rng()
    values = rng.normal(size=(13, 5))
    bad = rng.choice(values.size, size=9, replace=False)
    values.flat[bad[:3]] = np.nan
    values.flat[bad[3:6]] = np.inf
    values.flat[bad[6:]] = -np.inf
    assert _count_non_finite(values.reshape(-1), np.isfinite, chunk) == 9
    assert _count_non_finite(torch.from_numpy(values).reshape(-1), torch.isfinite, chunk) == 9


def test_the_message_counts_every_bad_entry_of_a_large_tensor():
    tensor = torch.zeros(3 * 2**20 + 7)  # three chunks and a bit, 5 columns
    tensor[[0, 2**20, 2**21 + 7, -1]] = float("nan")
    with pytest.raises(NonFiniteResultError, match="holds 4 non-finite values"):
        check_finite_result(tensor.reshape(-1, 5), "embedding")
    check_finite_result(torch.zeros(10, 4), "embedding")  # finite: no error
