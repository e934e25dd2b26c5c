"""Prints the installed version of each direct dependency of llmcat beside the version the lock
(.ci/constraints.txt) holds, and marks the differences: CI's record of what it ran, and of how
far the newest releases have drifted from the lock.

    python .ci/versions.py [--drift]   (--drift: print only the differences)
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def main() -> int:
    only_drift = "--drift" in sys.argv[1:]
    lock_file = Path(__file__).with_name("constraints.txt")
    locked = {}
    for line in lock_file.read_text(encoding="utf-8").splitlines():
        pin = line.split("#", 1)[0].strip()
        if "==" in pin:
            name, version = pin.split("==", 1)
            locked[canonical(name)] = version.strip()
    direct = sorted(
        {
            canonical(re.split(r"[\s;<>=!~\[(]", r, maxsplit=1)[0])
            for r in metadata.requires("llmcat") or []
        }
    )
    drift = 0
    for name in direct:
        if name == "llmcat":
            continue
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = "-"
        lock = locked.get(name, "-")
        differs = installed not in ("-", lock)
        drift += differs
        if differs or not only_drift:
            mark = "  <- not the locked version" if differs else ""
            print(f"  {name:28} {installed:20} lock {lock}{mark}")
    print(f"  {drift} direct dependencies differ from .ci/constraints.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
