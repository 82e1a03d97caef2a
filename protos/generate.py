"""Regenerate the Python stubs committed beside the protos, or check that they match.

    python protos/generate.py           # rewrite protos/sweepd/v1/*_pb2*.py(i)
    python protos/generate.py --check   # exit 1 if the committed stubs differ (CI)

Needs grpcio-tools (a test dependency). The stubs import each other as ``sweepd.v1.*``, the
package they install as.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parent
PACKAGE_DIR = PROTO_ROOT / "sweepd" / "v1"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def generate(out_root: Path) -> list[Path]:
    from grpc_tools import protoc  # test dependency, imported only here

    include = Path(protoc.__file__).parent / "_proto"
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PACKAGE_DIR.glob("*.proto"))
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        f"--grpc_python_out={out_root}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    out_pkg = out_root / "sweepd" / "v1"
    return sorted(p for p in out_pkg.iterdir() if p.name.endswith(GENERATED_SUFFIXES))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    check = parser.parse_args().check
    with tempfile.TemporaryDirectory() as tmp:
        generated = generate(Path(tmp))
        committed = sorted(p for p in PACKAGE_DIR.iterdir() if p.name.endswith(GENERATED_SUFFIXES))
        if check:
            names = {p.name for p in generated}
            stale = [p.name for p in committed if p.name not in names]
            stale += [
                p.name for p in generated
                if not (PACKAGE_DIR / p.name).exists()
                or not filecmp.cmp(p, PACKAGE_DIR / p.name, shallow=False)
            ]
            if stale:
                print("generated stubs are out of date: " + ", ".join(sorted(stale)))
                print("run: python protos/generate.py")
                return 1
            print(f"{len(generated)} generated stubs match the protos")
            return 0
        for p in committed:
            p.unlink()
        for p in generated:
            shutil.copy(p, PACKAGE_DIR / p.name)
        print(f"wrote {len(generated)} stubs to {PACKAGE_DIR}")
        return 0


if __name__ == "__main__":
    sys.exit(main())
