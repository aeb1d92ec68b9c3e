"""Fixtures for download tests: the fault-injecting loopback server on 127.0.0.1."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # faultserver.py and dlhelpers.py

from faultserver import FaultServer  # noqa: E402


@pytest.fixture
def server():
    with FaultServer() as srv:
        yield srv
