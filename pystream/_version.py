"""pystream's version: the one place it is written.  pyproject.toml reads
it, and build_ffi.py compiles it into the C core, which refuses to load
under a different version of the Python package."""

__version__ = "0.1.0"
