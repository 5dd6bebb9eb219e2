"""The garbage collector's schedule of the ``fastnet`` program.

The program owns its process, so it sets the schedule:

- off while it starts (the imports of scikit-learn, Numba and the kernels, and
  reading the data), which create some 300,000 objects that live until exit and no
  cyclic garbage worth a collection: walking them is a noticeable part of a short
  ``fastnet train``;
- on, with those objects frozen (``gc.freeze``), from where the work begins
  (:func:`work_begins`), so a long training run collects as usual but never walks
  the startup objects again;
- frozen at the end (:func:`program_ends`): the interpreter's collections at exit
  would otherwise walk every object once more. Every file the command wrote is
  closed and renamed by then, and Python flushes the standard streams at exit as
  before.

When :func:`fastnet.tabular.cli.main` is called in-process (tests, scripts) nothing
here runs: their collector is theirs.
"""

import gc

#: set by :func:`program_starts`; see :func:`work_begins`
_starting = False


def program_starts():
    """The collector off until :func:`work_begins`."""
    global _starting
    gc.disable()
    _starting = True


def work_begins():
    """Where the program's work (training, predicting, benchmarking) begins: the
    collector, off while the program started, comes back on, with every object made
    so far frozen out of its walks. Nothing here unless :func:`program_starts` ran."""
    global _starting
    if _starting:
        _starting = False
        gc.freeze()
        gc.enable()


def program_ends():
    """Every object frozen, out of the collections at exit."""
    gc.freeze()
