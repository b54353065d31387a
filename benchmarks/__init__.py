"""The benchmarks, a package so that tests import their shared code as ``benchmarks._x``."""
