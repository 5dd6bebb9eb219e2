"""The ``fastnet`` command: ``train``, ``predict``, ``info``, ``export``, ``bench``
and ``compile``.

This module is the entry point (``fastnet = "fastnet.tabular.cli:command"``, and
``python -m fastnet.tabular.cli``); the rest has its own rooms:

- :mod:`~fastnet.tabular.parser`: the arguments;
- :mod:`~fastnet.tabular.commands`: one module per subcommand
  (:mod:`~fastnet.tabular.commands.train` and the steps it shares);
- :mod:`~fastnet.tabular.errors`: every failure is one line on stderr with exit
  code 2 (1 for a bug, 130 for Ctrl-C); never a traceback, and never a model file
  overwritten by a run that then fails;
- :mod:`~fastnet.tabular.collector`: the garbage collector's schedule of the
  program;
- :mod:`~fastnet.tabular.checkpoint`: ``--checkpoint`` and ``--resume``.
"""

import importlib
import sys

from . import collector
from .commands.target import infer_task
from .errors import CliError, exit_code
from .parser import ACTIVATIONS, build_parser, given_options

__all__ = ["ACTIVATIONS", "CliError", "build_parser", "command", "infer_task", "main"]


def main(argv=None):
    """Run the command line ``argv`` (default: the process's arguments) in this
    process; the exit code."""
    args = build_parser().parse_args(argv)
    args.given = given_options(argv)
    return exit_code(_run, args)


def _run(args):
    """Run the subcommand ``args.command``: its module in
    :mod:`fastnet.tabular.commands`, imported only now (``--help`` and
    ``--version`` import none)."""
    module = importlib.import_module(f"{__package__}.commands.{args.command}")
    return module.run(args)


def command():
    """The ``fastnet`` program: :func:`main` on the process's arguments, then exit,
    with the collector's schedule of :mod:`~fastnet.tabular.collector`."""
    collector.program_starts()
    try:
        code = main()
    finally:
        collector.work_begins()
    collector.program_ends()
    return code


if __name__ == "__main__":
    sys.exit(command())
