"""``fastnet bench``: fastnet beside its peers (:mod:`fastnet._bench.workloads`)."""

from .. import collector


def run(args):
    from ..._bench import workloads

    collector.work_begins()
    return workloads.main(quick=args.quick)
