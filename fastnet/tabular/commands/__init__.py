"""The subcommands of the ``fastnet`` command, one module each (``train``,
``predict``, ``info``, ``export``, ``bench``, ``compile``), each with a
``run(args)`` that returns the exit code, and the steps they share.
:mod:`fastnet.tabular.cli` imports a subcommand's module only when it runs, so
``--help`` imports none of them (it does import :mod:`.target`, for
``infer_task``: that one stays light)."""
