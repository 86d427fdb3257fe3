"""Shared fixtures: the real data folder and a per-session cache folder for parsed data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA_ENV = "ZSL_CL_SHARED_DATA"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Return the read-only real data folder; fail (never skip) when it is missing.

    The folder is $ZSL_CL_SHARED_DATA when set, else shared/data beside the repository root.
    """
    configured = os.environ.get(SHARED_DATA_ENV, "")
    path = Path(configured) if configured else Path(__file__).resolve().parents[1].parent / "shared" / "data"
    if not path.is_dir():
        pytest.fail(
            f"real data folder {path} not found: "
            f"set {SHARED_DATA_ENV} to the folder that contains MNIST/raw/ and femnist/",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def data_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a cache folder for the whole session, so real data is parsed once and never cached under ~/.cache."""
    return tmp_path_factory.mktemp("data-cache")


# ---- Plugin isolation ----------------------------------------------------------
# Plugins installed on the machine (entry points in the "zsl_cl" group) and plugin
# variables set in the developer's shell would change which components exist, so
# every test starts without them. Subprocesses inherit this environment. A test
# that needs entry points sets ZSL_CL_LOAD_ENTRY_POINTS=1 itself.
@pytest.fixture(scope="session", autouse=True)
def _isolate_plugins():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ZSL_CL_LOAD_ENTRY_POINTS", "0")
        patch.delenv("ZSL_CL_PLUGINS", raising=False)
        patch.delenv("ZSL_CL_DISABLE_PLUGINS", raising=False)
        yield
# ---- end of plugin isolation ---------------------------------------------------
