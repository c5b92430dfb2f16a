"""Wrappers over any stream that follows ``pystream.abc``: TLS, stapled
streams, the asyncio adapter, channels.  They never import the core, so
they work over a user's own streams as over pystream's (docs/design.md,
"Layers")."""
