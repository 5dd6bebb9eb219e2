"""fastnet's runtime: the compiled MLP driver and its ABI, the native cache,
ahead-of-time and background compile, threads, input checks."""
