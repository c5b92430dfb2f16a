# The CFFI extension is declared here because cffi_modules is a setup()
# keyword; everything else lives in pyproject.toml.
from setuptools import setup

setup(cffi_modules=["build_ffi.py:ffibuilder"])
