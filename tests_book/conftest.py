"""Fixtures for the reader's checks (need a built book and Chromium; not part of `pytest tests`)."""

import pytest
from cdp import Browser, find_chromium


@pytest.fixture(scope="session")
def browser():
    if not find_chromium():
        pytest.fail("no chromium: run `make chromium` (apt-get install -y chromium)")
    with Browser() as b:
        yield b
