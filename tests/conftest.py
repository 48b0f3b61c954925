"""Shared fixtures: every test that takes ``device`` runs on the CPU and, where one exists, on CUDA."""

import pytest

from tensorkit.backend import cuda_available

DEVICES = ["cpu"] + (["cuda"] if cuda_available() else [])


@pytest.fixture(params=DEVICES)
def device(request):
    """The devices the suite runs on: always "cpu", and "cuda" on a machine with a GPU."""
    return request.param
