"""The benchmark workloads and report behind ``fastnet bench``."""
