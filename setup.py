"""The one compiled part of nx: the token scan (nx/ingest/_token_scan.c). It is optional: where
it cannot be built (no C compiler), ingest uses the pure-Python scan, same results, slower.
Everything else about the package is in pyproject.toml."""
from setuptools import Extension, setup

setup(ext_modules=[Extension("nx.ingest._token_scan", ["nx/ingest/_token_scan.c"], optional=True,
                             extra_compile_args=["-O2"])])
