"""fastnet's runtime: the compiled MLP driver (``mlp``), the native cache
(``objects``, ``addresses``, ``c_kernels``; ``native`` gathers the names the other
layers use), ahead-of-time (``precompile``) and background (``background``)
compilation, threads, input checks, and fastnet's ``.npz`` files (``atomic``
writes, the ``archive`` reads). The kernels' calling convention is
``fastnet.kernels.abi``: the runtime imports the kernels, never the other way."""
