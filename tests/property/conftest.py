"""Property tests run torch single-threaded: each generated model is tiny and new, and on a shared
2-core machine two intra-op threads contending with other processes made a forward pass ~20×
slower. The hypothesis profiles ("default", "long") are registered in ``tests/conftest.py``."""
import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
