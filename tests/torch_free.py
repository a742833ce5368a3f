"""Run a command as a torch-free install would: torch, transformers and matplotlib cannot be imported.

Usage: python tests/torch_free.py -c CODE   |   python tests/torch_free.py engine ARGS...
"""
from __future__ import annotations

import importlib.abc
import sys

BLOCKED = ("torch", "transformers", "matplotlib")


class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked: torch-free install)", name=name)
        return None


sys.meta_path.insert(0, _Block())

if __name__ == "__main__":
    if sys.argv[1] == "-c":
        exec(compile(sys.argv[2], "<torch-free>", "exec"), {"__name__": "__main__"})
    else:
        from engine.cli import main

        main(sys.argv[2:], prog_name="engine")
    leaked = [m for m in sys.modules if m.split(".")[0] in BLOCKED]
    assert not leaked, f"imported {leaked}"
