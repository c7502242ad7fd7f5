"""Import the scripts of ``tests/helpers/`` as modules (they are also run as subprocesses,
so they are not a package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

HELPERS = Path(__file__).parent / "helpers"


def load_helper(name: str) -> ModuleType:
    """``tests/helpers/<name>.py`` as a module, imported once per process."""
    module_name = f"_eventlog_test_helper_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, HELPERS / f"{name}.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]
