"""The module paths of fastnet 0.1.0, before the layered layout, as aliases.

Pickles (and joblib and Dask payloads) name a class by its module: an estimator
pickled by 0.1.0 names ``fastnet.estimator``, a layer ``fastnet.layers.linear``.
Each old path in :data:`MOVED` imports as the module that now holds its code (the
same module object, so its classes are the same classes), through a finder placed
first on ``sys.meta_path`` by :func:`install` (``import fastnet`` calls it). Only
the public paths are kept; the private modules (``fastnet._native``, ...) were
never an interface.
"""

import importlib
import sys
from importlib.machinery import ModuleSpec

#: old module path -> the module that holds its code now
MOVED = {
    "fastnet.estimator": "fastnet.sklearn.estimators",
    "fastnet.dask": "fastnet.sklearn.dask",
    "fastnet.train": "fastnet.training.trainer",
    "fastnet.io": "fastnet.model_files",
    "fastnet.cli": "fastnet.tabular.cli",
    "fastnet.table": "fastnet.tabular.table",
    "fastnet.prepare": "fastnet.tabular.prepare",
    "fastnet.graph": "fastnet.nn.graph",
    "fastnet.sequential": "fastnet.nn.sequential",
    "fastnet.losses": "fastnet.nn.losses",
    "fastnet.contract": "fastnet.nn.einsum_plan",
    "fastnet.second_order": "fastnet.nn.second_order",
    "fastnet.layers": "fastnet.nn",
    # not an old path: the public short name of the callbacks' module
    "fastnet.callbacks": "fastnet.training.callbacks",
    **{
        f"fastnet.layers.{name}": f"fastnet.nn.{name}"
        for name in ("activations", "base", "dropout", "einsum", "linear", "softmax")
    },
}


class _Alias:
    """Finds an old path of :data:`MOVED` and loads it as its new module (a meta
    path finder and loader, by protocol: ``importlib.abc`` is slow to import)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED:
            return None
        return ModuleSpec(fullname, self)

    def create_module(self, spec):
        # the new module itself: importlib sets no attribute a module already has,
        # and files it in sys.modules under the old name too
        return importlib.import_module(MOVED[spec.name])

    def exec_module(self, module):
        pass  # the new module ran when it was imported


def install():
    """Put the finder of old paths first on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _Alias) for f in sys.meta_path):
        sys.meta_path.insert(0, _Alias())
