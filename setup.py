# The CFFI extension is declared here because cffi_modules is a setup()
# keyword; everything else lives in pyproject.toml.
import platform

from setuptools import setup

options = {}
if platform.python_implementation() == "CPython":
    # cffi compiles the extension against CPython's stable ABI (it is named
    # _pystream_cffi.abi3.so): tag the wheel so, and one wheel serves every
    # CPython from 3.9 (pyproject's requires-python) on.
    options["bdist_wheel"] = {"py_limited_api": "cp39"}

setup(cffi_modules=["build_ffi.py:ffibuilder"], options=options)
