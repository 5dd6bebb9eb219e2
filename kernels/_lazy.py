"""Imports with Python's garbage collector paused (no Numba import here).

A first use of the kernels brings in Numba and makes the kernels' dispatchers; the
estimators' first import brings in scikit-learn: some 45,000 objects that live
until exit. While they were made, the collector walked the whole heap (the caller's
too) again and again. Paused, they are walked once, young, by the first collection
after. ``fastnet``'s own lazy names use this too.
"""

import gc
import importlib


def import_paused(module):
    """Import the module ``module`` (an absolute name) with the collector paused;
    a collector that is off stays off. Like any import, it waits for another
    thread's import of the same module to finish."""
    if not gc.isenabled():
        return importlib.import_module(module)
    gc.disable()
    try:
        return importlib.import_module(module)
    finally:
        gc.enable()
