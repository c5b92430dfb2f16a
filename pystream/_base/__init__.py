"""The base every other layer stands on: the stream errors and their one
translator (``_errors``, ``_state``), the checkpoint (``_checkpoint``), the
reading helpers over any buffer (``_readers``), ``send_file`` over
``send_all`` (``_sendfile``) and small helpers (``_util``).  It imports
nothing of pystream's but ``pystream.abc`` for type checking; see
docs/design.md, "Layers"."""
