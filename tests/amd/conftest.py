from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from sim.corpus.sources import MissingTool, check_tools


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ~40-clip generated corpus (skips, saying why, when espeak-ng/sox are missing)."""
    try:
        check_tools()
    except MissingTool as e:
        print(f"skipping corpus tests: {e}")
        pytest.skip(str(e))
    from sim.corpus.store import build

    out = tmp_path_factory.mktemp("amd_corpus")
    build(out, 40, 3, "dev")
    return out
