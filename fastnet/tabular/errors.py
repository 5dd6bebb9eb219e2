"""How the ``fastnet`` command fails: one line on stderr and an exit code, never a
traceback.

- 2: a problem with the input (:class:`CliError`, a table that cannot be read, a
  bad value), or an argument argparse refuses;
- 130: Ctrl-C (:class:`Interrupted` says what was kept);
- 1: a bug, still reported as one line.
"""

import os
import sys

from .table import TableError


class CliError(Exception):
    """A problem with the command's input, reported as one line."""


class Interrupted(Exception):
    """Training stopped by Ctrl-C: nothing saved but the checkpoint."""


def exit_code(func, args):
    """Run the subcommand ``func(args)``; its exit code, or the code of the failure
    it raised, which is reported on stderr in one line."""
    try:
        return func(args)
    except Interrupted as exc:
        print(f"fastnet: {exc}", file=sys.stderr)
        return 130
    except (CliError, TableError) as exc:
        print(f"fastnet: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fastnet: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except (ValueError, TypeError, OSError, MemoryError) as exc:
        print(f"fastnet: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: still one line, never a traceback
        print(f"fastnet: error: {type(exc).__name__}: {one_line(exc)}", file=sys.stderr)
        return 1


def one_line(exc):
    """The exception's message on one line, cut at 400 characters."""
    text = " ".join(str(exc).split())
    return text if len(text) < 400 else text[:397] + "..."


def did_you_mean(name, names):
    """`` (is 'x' meant as 'X'?)`` for the column of ``names`` closest to
    ``name`` (the same but for case first), or nothing."""
    import difflib

    close = difflib.get_close_matches(name, [str(n) for n in names], n=1)
    lower = [n for n in names if str(n).lower() == name.lower()]
    guess = lower[0] if lower else (close[0] if close else None)
    return f" (is {guess!r} meant as {name!r}?)" if guess else ""
