"""mgsr's built-in components, shipped as ordinary plugins (installed as ``mgsr_plugins``).

Each module provides its components through one ``@hookimpl`` and is declared
as an entry point in the ``mgsr`` group, exactly as a third-party plugin would.
"""
