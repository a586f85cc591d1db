# Host-only codec modules (Makefile HOST_ONLY) for test scaffolding under MicroPython when the
# app's kmp package comes from where the board has it (/lib, or a ROMFS image), which does not
# carry them: the virtual meter needs kmp.messages and kmp.strict.


def load(source="lib/kmp", names=("messages", "strict")):
    """Load the modules from the source tree as submodules of the kmp already imported."""
    import sys

    import kmp

    sys.path.insert(0, source)
    try:
        for name in names:
            if "kmp." + name not in sys.modules:
                sys.modules["kmp." + name] = mod = __import__(name)
                setattr(kmp, name, mod)
                del sys.modules[name]
    finally:
        sys.path.pop(0)
