import socket

import pytest
import torch


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Nothing in the tests may touch the network: any socket connection fails loudly."""

    def guard(*args, **kwargs):
        raise AssertionError("a test tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", guard)
    monkeypatch.setattr(socket, "create_connection", guard)


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)
    yield
