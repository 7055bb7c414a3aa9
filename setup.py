"""The compiled parts of nx: the token scan (nx/ingest/_token_scan.c), the canonical NeuronRecord
reader (nx/ingest/_record_scan.c) and the sequence_id digests (nx/_sequence_digests.c, through
OpenSSL's SHA-256). All are optional: where one cannot be built (no C compiler, no OpenSSL
headers), nx uses its Python twin (for the record reader: simdjson and the token scan), same
results, slower.
Everything else about the package is in pyproject.toml."""
from setuptools import Extension, setup

setup(ext_modules=[Extension("nx.ingest._token_scan", ["nx/ingest/_token_scan.c"], optional=True,
                             extra_compile_args=["-O2"]),
                   Extension("nx.ingest._record_scan", ["nx/ingest/_record_scan.c"], optional=True,
                             extra_compile_args=["-O2"]),
                   Extension("nx._sequence_digests", ["nx/_sequence_digests.c"], optional=True,
                             libraries=["crypto"], extra_compile_args=["-O2"])])
