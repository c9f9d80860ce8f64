"""Builds the qstar Python package (the _qstar extension + bindings/python/qstar) with
setuptools, running CMake for the extension. Offline, with Debian 12's packages only:

    pip install --no-build-isolation .              # python3-pip, python3-setuptools, python3-wheel
    python3 -m build --wheel --no-isolation         # python3-build

CMake (>= 3.25), a C++20 compiler and pybind11's CMake package (pybind11-dev) must be
installed; nothing is downloaded. The optional parts are found as in the CMake build
(scripts/install-deps.sh): LibTorch (libtorch-dev), PCRE2 + utf8proc, libcurl, SentencePiece.

Environment:
  QSTAR_CMAKE_BUILD_DIR  an existing CMake build folder of this checkout whose qstar_python
                         target is built (its python/qstar/ holds _qstar*.so): the wheel
                         packages that folder as is, with no compilation (the ctest test
                         wheel_install does this). Unset: CMake configures and builds the
                         qstar_python target from scratch in this build's temporary folder.
  QSTAR_CMAKE_ARGS       extra CMake arguments for the scratch build, split on whitespace
                         (e.g. "-DQSTAR_WITH_TORCH=OFF" for a build without LibTorch).
  QSTAR_JOBS             parallel compile jobs for the scratch build (default: all cores).
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


def version():
    text = (ROOT / "include" / "qstar" / "version.hpp").read_text(encoding="utf-8")
    m = re.search(r'#define QSTAR_VERSION_STRING "([^"]+)"', text)
    if not m:
        raise RuntimeError("include/qstar/version.hpp: no QSTAR_VERSION_STRING")
    return m.group(1)


class CMakeBuild(build_ext):
    """Builds (or takes from QSTAR_CMAKE_BUILD_DIR) CMake's python/qstar/ folder and copies it
    into the wheel's qstar/: the extension, the Python files, the data sets and (when built)
    libqstar_sentencepiece.so, which qstar/__init__.py points QSTAR_SENTENCEPIECE_MODULE at."""

    def run(self):
        given = os.environ.get("QSTAR_CMAKE_BUILD_DIR")
        if given:
            build_dir = Path(given).resolve()
            if not (build_dir / "CMakeCache.txt").is_file():
                raise RuntimeError(f"QSTAR_CMAKE_BUILD_DIR={given}: not a CMake build folder (no CMakeCache.txt)")
        else:
            build_dir = Path(self.build_temp).resolve() / "cmake"
            self.cmake_build(build_dir)
        pkg = build_dir / "python" / "qstar"
        exts = sorted(pkg.glob("_qstar*.so"))
        if not exts:
            raise RuntimeError(f"{pkg}: no _qstar*.so (build the qstar_python target of {build_dir})")
        out = Path(self.build_lib) / "qstar"
        if self.inplace:
            raise RuntimeError("qstar: an in-place build is not supported; use the CMake build (docs/python.md)")
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(pkg, out, ignore=shutil.ignore_patterns("__pycache__"))
        spm = build_dir / "libqstar_sentencepiece.so"
        if spm.is_file():
            shutil.copy2(spm, out / spm.name)

    def cmake_build(self, build_dir):
        build_dir.mkdir(parents=True, exist_ok=True)
        args = [
            "cmake", "-S", str(ROOT), "-B", str(build_dir),
            "-DCMAKE_BUILD_TYPE=Release",
            f"-DPython3_EXECUTABLE={sys.executable}",
            "-DQSTAR_BUILD_PYTHON=ON",
            "-DQSTAR_BUILD_TESTS=OFF", "-DQSTAR_BUILD_EXAMPLES=OFF", "-DQSTAR_BUILD_BENCHMARKS=OFF",
            "-DQSTAR_BUILD_CLI=OFF", "-DQSTAR_BUILD_TRAIN=OFF", "-DQSTAR_INSTALL=OFF",
        ]
        if shutil.which("ninja"):
            args += ["-G", "Ninja"]
        args += os.environ.get("QSTAR_CMAKE_ARGS", "").split()
        subprocess.run(args, check=True)
        jobs = os.environ.get("QSTAR_JOBS") or str(os.cpu_count() or 1)
        # qstar_python depends on qstar_hf, which depends on libqstar_sentencepiece.so when
        # SentencePiece is found: one target builds everything the package needs.
        subprocess.run(["cmake", "--build", str(build_dir), "--target", "qstar_python", "-j", jobs], check=True)


setup(
    version=version(),
    packages=["qstar"],
    package_dir={"qstar": "bindings/python/qstar"},
    # The extension is built by CMake (CMakeBuild); this entry only makes the wheel
    # platform-specific and runs build_ext.
    ext_modules=[Extension("qstar._qstar", sources=[])],
    cmdclass={"build_ext": CMakeBuild},
    # setuptools' own folders under build/pip, apart from scripts/build.sh's CMake files.
    options={"build": {"build_base": "build/pip"}},
    zip_safe=False,
)
