"""scripts/check-packaging.py must accept the repository as it is and reject each kind of
drift it claims to catch. Each case copies the files the check reads into a temporary root,
breaks one thing, and expects exit status 1 with a message naming the problem.
Run by ctest (check_packaging_selftest) with /usr/bin/python3 -m pytest."""
import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPT = os.path.join(ROOT, "scripts", "check-packaging.py")
TEST_OPTIONS = ("-DQSTAR_BUILD_TESTS=OFF;-DQSTAR_BUILD_EXAMPLES=OFF;-DQSTAR_BUILD_BENCHMARKS=OFF;"
                "-DQSTAR_BUILD_CLI=OFF;-DQSTAR_INSTALL=ON;-DQSTAR_WITH_HTTP=OFF;"
                "-DQSTAR_WITH_TORCH=OFF;-DQSTAR_BUILD_PYTHON=OFF")


def read_test_options():
    """QSTAR_RECIPE_OPTIONS from tests/package/CMakeLists.txt, as ctest passes them."""
    with open(os.path.join(ROOT, "tests", "package", "CMakeLists.txt"), encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"set\(QSTAR_RECIPE_OPTIONS\s+(.*?)\)", text, re.S)
    assert m, "tests/package/CMakeLists.txt has no QSTAR_RECIPE_OPTIONS"
    return ";".join(m.group(1).split())


@pytest.fixture()
def root(tmp_path):
    """A copy of what the check reads (plus one file per exports_sources folder)."""
    for rel in ("CMakeLists.txt", "include/qstar/version.hpp", "conanfile.py",
                "test_package/conanfile.py", "ports/qstar/vcpkg.json",
                "ports/qstar/portfile.cmake"):
        dst = tmp_path / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(os.path.join(ROOT, rel), dst)
    shutil.copytree(os.path.join(ROOT, "cmake"), tmp_path / "cmake")
    src_bind = os.path.join(ROOT, "bindings", "python", "CMakeLists.txt")
    if os.path.exists(src_bind):
        (tmp_path / "bindings" / "python").mkdir(parents=True)
        shutil.copy(src_bind, tmp_path / "bindings" / "python" / "CMakeLists.txt")
    for folder in ("src", "data", "bindings"):
        (tmp_path / folder).mkdir(exist_ok=True)
        (tmp_path / folder / "placeholder").write_text("x")
    return tmp_path


def run(root, options=None):
    args = [sys.executable, SCRIPT, "--root", str(root)]
    if options is not None:
        args.append("--test-options=" + options)
    p = subprocess.run(args, capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def edit(path, old, new):
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_the_repository_passes():
    rc, out = run(ROOT, read_test_options())
    assert rc == 0, out
    assert "ok: vcpkg port and Conan recipe agree" in out


def test_the_copy_passes(root):
    rc, out = run(root, TEST_OPTIONS)
    assert rc == 0, out


def test_vcpkg_version_drift(root):
    edit(root / "ports/qstar/vcpkg.json", '"version": "', '"version": "9.')
    rc, out = run(root)
    assert rc == 1 and "vcpkg.json: version '9." in out, out


def test_conan_version_drift(root):
    edit(root / "include/qstar/version.hpp", "#define QSTAR_VERSION_MINOR ", "#define QSTAR_VERSION_MINOR 7")
    rc, out = run(root)
    assert rc == 1 and "conanfile.py: version" in out and "CMake project version" in out, out


def test_fixed_options_differ(root):
    edit(root / "conanfile.py", 'tc.variables["QSTAR_BUILD_CLI"] = "OFF"', 'tc.variables["QSTAR_BUILD_CLI"] = "ON"')
    rc, out = run(root)
    assert rc == 1 and "differ from portfile.cmake's" in out, out


def test_option_unknown_to_cmake(root):
    edit(root / "ports/qstar/portfile.cmake", "-DQSTAR_INSTALL=ON", "-DQSTAR_INSTALL=ON\n    -DQSTAR_NO_SUCH=ON")
    rc, out = run(root)
    assert rc == 1 and "passes QSTAR_NO_SUCH, which the CMake project does not define" in out, out


def test_feature_mapped_to_another_option(root):
    edit(root / "ports/qstar/portfile.cmake", "torch   QSTAR_WITH_TORCH", "torch   QSTAR_WITH_HTTP")
    rc, out = run(root)
    assert rc == 1 and "vcpkg_check_features maps" in out, out


def test_libtorch_default_features(root):
    edit(root / "ports/qstar/vcpkg.json", '"default-features": false', '"default-features": true')
    rc, out = run(root)
    assert rc == 1 and "default-features" in out, out


def test_missing_package_info_target(root):
    edit(root / "conanfile.py", '"qstar::torch")', '"qstar::libtorch")')
    rc, out = run(root)
    assert rc == 1 and "does not declare qstar::torch" in out, out


def test_ctest_options_differ(root):
    rc, out = run(root, TEST_OPTIONS.replace("-DQSTAR_INSTALL=ON", "-DQSTAR_INSTALL=OFF"))
    assert rc == 1 and "QSTAR_RECIPE_OPTIONS" in out, out


def test_missing_portfile_call(root):
    edit(root / "ports/qstar/portfile.cmake", "vcpkg_cmake_config_fixup(", "# fixup removed (")
    rc, out = run(root)
    assert rc == 1 and "does not call vcpkg_cmake_config_fixup()" in out, out
