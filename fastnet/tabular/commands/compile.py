"""``fastnet compile``: every kernel compiled ahead of time into the cache, so
that no later fit waits for the compiler."""

import time

from .. import collector
from ..errors import CliError, one_line


def run(args):
    from ..._runtime import precompile

    collector.work_begins()
    start = time.perf_counter()

    def each(name, seconds):
        if args.verbose:
            print(f"{name:<48} {seconds:6.2f} s", flush=True)

    try:
        compiled, cached, jobs, folder = precompile.precompile(args.jobs, each)
    except RuntimeError as exc:
        raise CliError(one_line(exc)) from None
    took = time.perf_counter() - start
    if compiled:
        also = f"; {cached} were cached already" if cached else ""
        print(
            f"compiled {len(compiled)} kernels in {took:.1f} s with {jobs} "
            f"process{'es' * (jobs != 1)}{also} (cache: {folder})"
        )
    else:
        print(f"all {cached} kernels are compiled already (cache: {folder})")
    return 0
