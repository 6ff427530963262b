import socket

import pytest
import torch

from vaelib import config

# Importing vaelib sets no thread count; the tests apply config's once per process, here: each
# pytest-xdist worker takes its share of the cores (one each with `-n 2` on 2 cores), a lone
# process all of them, VAEBOOK_THREADS overrides both (config.threads).
THREADS = config.apply_threads()


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Nothing in the tests may touch the network: any socket connection fails loudly."""

    def guard(*args, **kwargs):
        raise AssertionError("a test tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", guard)
    monkeypatch.setattr(socket, "create_connection", guard)


@pytest.fixture(autouse=True)
def _threads():
    """Every test starts with the thread count applied above, whatever the test before it set."""
    if torch.get_num_threads() != THREADS:
        torch.set_num_threads(THREADS)
    yield
