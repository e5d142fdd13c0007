"""Run every benchmark: ``python -m bench [NAME ...]``. Each ``bench/bench_*.py`` has ``run() -> list[str]``
and prints its figures beside a baseline measured in the same run."""

from __future__ import annotations

import importlib
import platform
import os
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    names = argv or sorted(p.stem.removeprefix("bench_") for p in Path(__file__).parent.glob("bench_*.py"))
    print(f"# machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{platform.platform()}")
    for name in names:
        module = importlib.import_module(f"bench.bench_{name}")
        print(f"\n## {name}")
        for line in module.run():
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
