import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """Tests run on 2 shared cores: keep torch to one thread and seeded."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_flush_denormal(False)  # `main(["train", ...])` in-process turns flushing on (maven.denormals)
