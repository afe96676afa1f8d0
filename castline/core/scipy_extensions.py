"""scipy.signal's compiled loops, loaded without importing the ``scipy.signal`` package.

Importing ``scipy.signal`` imports ``scipy.stats`` and much else: about 0.9 CPU-s and 48 MB of
resident memory in a render's process, where castline needs only two small extension modules
(the IIR loop ``_sosfilt`` and the polyphase FIR loop ``_upfirdn_apply``). They need only numpy,
so each is loaded from its file alone and registered under its own name, as the import system
would: a later ``import scipy.signal`` finds it there instead of initialising it a second time.
Callers check what they load and fall back to ``scipy.signal``'s public functions when a scipy
lays its modules out differently.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def signal_extension(name: str) -> ModuleType | None:
    """The extension module ``scipy.signal.<name>``: the one already imported, else loaded from
    its file alone; None where scipy or the file is missing or it fails to load."""
    qualified = f"scipy.signal.{name}"
    module = sys.modules.get(qualified)
    if module is not None:
        return module
    if "scipy.signal" in sys.modules:  # the package is loaded anyway: import it the usual way
        try:
            return importlib.import_module(qualified)
        except ImportError:
            return None
    return _load_alone(qualified, name)


def _load_alone(qualified: str, name: str) -> ModuleType | None:
    scipy_spec = importlib.util.find_spec("scipy")
    if scipy_spec is None or scipy_spec.origin is None:
        return None
    folder = Path(scipy_spec.origin).parent / "signal"
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = folder / f"{name}{suffix}"
        if path.is_file():
            break
    else:
        return None
    spec = importlib.util.spec_from_file_location(qualified, path)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules[qualified] = module
    try:
        spec.loader.exec_module(module)
    except Exception:
        del sys.modules[qualified]
        return None
    return module
