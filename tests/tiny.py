"""The tiny real package the tests and benchmarks release: made here, needing no index."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

TINY_FILES = {
    "setup.py": (
        "from setuptools import setup\n"
        "setup(name='crdagtiny', version='1.0.0', packages=['crdagtiny'],\n"
        "      package_data={'crdagtiny': ['data/*.txt']}, python_requires='>=3.6',\n"
        "      description='A tiny package the tests release.', license='MIT',\n"
        "      install_requires=['attrs>=17.4'],\n"
        "      entry_points={'console_scripts': ['crdagtiny-hello = crdagtiny.cli:main']})\n"
    ),
    "crdagtiny/__init__.py": "from pathlib import Path\nGREETING = (Path(__file__).parent / 'data' / 'greeting.txt').read_text().strip()\n",
    "crdagtiny/cli.py": "def main():\n    from crdagtiny import GREETING\n    print(GREETING)\n",
    "crdagtiny/data/greeting.txt": "hello from crdagtiny\n",
    "LICENSE": "MIT License\n",
    "PKG-INFO": "Metadata-Version: 1.1\nName: crdagtiny\nVersion: 1.0.0\nSummary: A tiny package the tests release.\nLicense: MIT\n",
}


def make_sdist(folder: Path, files: dict[str, str] = TINY_FILES, top: str = "crdagtiny-1.0.0") -> Path:
    """A real sdist (tar.gz, fixed mtimes) with the given files under its top folder."""
    folder.mkdir(parents=True, exist_ok=True)
    sdist = folder / f"{top}.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        for name, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size, info.mtime, info.mode = len(data), 1_600_000_000, 0o644
            archive.addfile(info, io.BytesIO(data))
    return sdist
