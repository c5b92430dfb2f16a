"""The streams on the C core: sockets, listeners, pipes, processes, stdio,
and the openers and servers over them.  Each is a thin Python class over a
``pystream._core`` object; none calls C itself (docs/design.md, "Layers")."""
