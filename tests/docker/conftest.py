import shutil

import pytest


@pytest.fixture
def scratch(tmp_path):
    """tmp_path, emptied afterwards: pytest keeps the last runs' tmp dirs, and a fresh
    environment with torch and its CUDA wheels takes ~5 GB."""
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)
