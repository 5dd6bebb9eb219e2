"""The ``fastnet`` command's arguments: one subparser per subcommand, whose name
(``args.command``) is the module of :mod:`fastnet.tabular.commands` that runs it.

Importing this module must stay quick: ``fastnet --help`` and ``--version`` import
no subcommand, hence no scikit-learn, Numba or pandas.
"""

import argparse
from collections.abc import Sequence

from .._version import __version__


class _Activations(Sequence):
    """The estimators' ``activation=`` names, sorted, read from the registry
    (``fastnet.nn.activations.ESTIMATOR_ACTIVATIONS``) on first use: argparse
    looks at ``choices`` only to check a given ``--activation`` or to print
    ``train``'s help, so ``fastnet --help`` and ``--version`` import no NumPy."""

    def _names(self):
        from ..nn.activations import ESTIMATOR_ACTIVATIONS

        return sorted(ESTIMATOR_ACTIVATIONS)

    def __getitem__(self, i):
        return self._names()[i]

    def __len__(self):
        return len(self._names())

    def __contains__(self, name):
        return name in self._names()

    def __repr__(self):
        return repr(tuple(self._names()))


#: the choices of ``--activation``
ACTIVATIONS = _Activations()


def build_parser():
    """The parser of the whole command line."""
    p = _Parser(prog="fastnet", description="Fast MLPs on the CPU.")
    p.add_argument("--version", action="version", version=f"fastnet {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_train(sub)
    _add_predict(sub)
    _add_info(sub)
    _add_export(sub)
    _add_bench(sub)
    _add_compile(sub)
    return p


def given_options(argv):
    """The options given on the command line ``argv`` (a namespace without
    defaults), for ``--resume`` to refuse settings it cannot change."""
    p = build_parser()
    parsers = [p, *p._subparsers._group_actions[0].choices.values()]
    for parser in parsers:
        for action in parser._actions:
            action.default = argparse.SUPPRESS
        parser._defaults = {}
    return p.parse_args(argv)


# -- subcommands -----------------------------------------------------------------------
def _add_train(sub):
    t = sub.add_parser(
        "train", help="train a model (default: the digits data)", formatter_class=_Help
    )
    t.add_argument(
        "--data", help="CSV/TSV file, or .npz with X and y (default: the digits data)"
    )
    t.add_argument(
        "--target",
        help="target column: a name, or a position 1..n in a file without a header "
        "(default: the last column)",
    )
    t.add_argument("--drop", metavar="COLS", help="columns to leave out, e.g. id,name")
    _reading(t)
    t.add_argument(
        "--task", choices=["classify", "regress"], help="default: inferred and said"
    )
    t.add_argument(
        "--no-scale",
        dest="scale",
        action="store_false",
        help="do not standardise numeric columns",
    )
    t.add_argument(
        "--no-impute",
        dest="impute",
        action="store_false",
        help="a missing cell is an error instead of the column's median / mode",
    )
    _training(t)
    t.add_argument("--out", default="fastnet-model.npz", help="model file")
    t.add_argument("--plot", metavar="PNG", help="save loss and held-out score curves")
    t.add_argument("--checkpoint", metavar="PATH", help="save a checkpoint every epoch")
    t.add_argument("--resume", action="store_true", help="continue from --checkpoint")


def _training(t):
    """The network's and the optimizer's settings."""
    t.add_argument("--hidden", type=_hidden, default="128,64", help="layer sizes")
    t.add_argument(
        "--activation",
        choices=ACTIVATIONS,
        default="relu",
        help="hidden layers' activation",
    )
    t.add_argument(
        "--solver", choices=["adam", "sgd", "lbfgs"], default="adam", help="optimizer"
    )
    t.add_argument(
        "--epochs",
        type=_positive(int),
        help="epochs in all (default: 100; with --resume: the checkpoint's)",
    )
    t.add_argument("--batch-size", type=_positive(int), default=64, help="rows")
    t.add_argument(
        "--lr", type=_positive(float), default=1e-3, help="initial learning rate"
    )
    t.add_argument(
        "--seed", type=int, default=0, help="weights, shuffling and the held-out split"
    )


def _add_predict(sub):
    q = sub.add_parser(
        "predict", help="predict with a saved model", formatter_class=_Help
    )
    q.add_argument("model")
    q.add_argument(
        "data", help="CSV/TSV with the training columns (by name or position), or .npz"
    )
    _reading(q)
    q.add_argument("--proba", action="store_true", help="CSV of class probabilities")


def _add_info(sub):
    i = sub.add_parser("info", help="describe a saved model", formatter_class=_Help)
    i.add_argument("model")
    i.add_argument("--all", action="store_true", help="every feature, not the first 30")


def _add_export(sub):
    e = sub.add_parser(
        "export",
        help="write a saved model as an ONNX graph (the onnx extra)",
        formatter_class=_Help,
    )
    e.add_argument("model")
    e.add_argument("out", help="the ONNX file to write, e.g. model.onnx")


def _add_bench(sub):
    b = sub.add_parser(
        "bench", help="benchmark fastnet against its peers", formatter_class=_Help
    )
    b.add_argument(
        "--quick", action="store_true", help="5 repetitions of short samples, not 11"
    )


def _add_compile(sub):
    c = sub.add_parser(
        "compile",
        help="compile every kernel ahead of time, so that no later fit waits for "
        "the compiler",
        formatter_class=_Help,
    )
    c.add_argument(
        "--jobs",
        type=_positive(int),
        help="worker processes (default: the cores this process may use)",
    )
    c.add_argument(
        "-v", "--verbose", action="store_true", help="each kernel's compile time"
    )


def _reading(p):
    """How to read a data file: its delimiter and whether it has a header."""
    p.add_argument(
        "--sep", type=_sep, help="delimiter: , ; tab or | (default: detected)"
    )
    h = p.add_mutually_exclusive_group()
    h.add_argument(
        "--header",
        dest="header",
        action="store_true",
        default=None,
        help="the first row names the columns (default: detected)",
    )
    h.add_argument(
        "--no-header",
        dest="header",
        action="store_false",
        help="the first row is data; columns are col1, col2, ...",
    )


# -- values ----------------------------------------------------------------------------
def _hidden(text):
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--hidden takes sizes like 128,64, got {text!r}"
        ) from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"--hidden sizes must be positive, got {text!r}"
        )
    return sizes


def _positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a positive number, got {text!r}"
            ) from None
        if not value > 0:
            raise argparse.ArgumentTypeError(
                f"expected a positive number, got {text!r}"
            )
        return value

    return parse


def _sep(text):
    named = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
    sep = named.get(text.lower(), text)
    if sep not in (",", ";", "\t", "|"):
        raise argparse.ArgumentTypeError(f"--sep takes , ; | or tab, got {text!r}")
    return sep


class _Help(argparse.HelpFormatter):
    """Help that shows each option's default, where it has one."""

    def _get_help_string(self, action):
        text = action.help or ""
        if not any(action.default is v for v in (None, False, True, argparse.SUPPRESS)):
            text += f" (default: {action.default})"
        return text


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")
