#!/usr/bin/env python3
"""Keeps the vcpkg port (ports/qstar/) and the Conan recipe (conanfile.py) in step with the
CMake project. Neither vcpkg nor Conan runs in CI, so this static check is what stops them
from drifting (docs/packaging.md). It checks:

  * version: vcpkg.json "version" and conanfile.py `version` equal CMakeLists.txt's project
    VERSION (read from include/qstar/version.hpp, as CMakeLists.txt does);
  * options: every QSTAR_* option the recipes pass exists in the CMake project; the fixed
    options of portfile.cmake, conanfile.py and the ctest consumer (--test-options, from
    tests/package/CMakeLists.txt) are the same, with the same values; the vcpkg features
    and Conan options map to the same CMake options (torch/with_torch -> QSTAR_WITH_TORCH,
    python/with_python -> QSTAR_BUILD_PYTHON);
  * the port: the torch feature depends on libtorch with default-features false, the
    portfile uses vcpkg_cmake_configure, vcpkg_cmake_install, vcpkg_cmake_config_fixup and
    vcpkg_install_copyright;
  * the recipe: options with_torch and with_python (default False), header-only package id
    when both are off, package_info declaring qstar::qstar and qstar::torch, every
    exports_sources pattern matching a file, a test_package/ folder.

Usage: scripts/check-packaging.py [--root DIR] [--test-options "-DA=x;-DB=y"]
Exit status 0 when everything agrees, 1 with one line per problem otherwise.
"""
import argparse
import ast
import glob
import json
import os
import re
import sys

# vcpkg feature / Conan option -> the CMake option it switches (ON when enabled).
FEATURE_OPTIONS = {"torch": "QSTAR_WITH_TORCH", "python": "QSTAR_BUILD_PYTHON"}
CONAN_OPTIONS = {"with_torch": "QSTAR_WITH_TORCH", "with_python": "QSTAR_BUILD_PYTHON"}
PORTFILE_FUNCTIONS = ("vcpkg_cmake_configure", "vcpkg_cmake_install", "vcpkg_cmake_config_fixup",
                      "vcpkg_install_copyright")


class Checker:
    def __init__(self, root):
        self.root = root
        self.problems = []

    def fail(self, where, what):
        self.problems.append(f"{where}: {what}")

    def read(self, rel):
        path = os.path.join(self.root, rel)
        try:
            with open(path, encoding="utf-8") as f:
                return f.read()
        except OSError as e:
            self.fail(rel, f"cannot read ({e.strerror})")
            return None

    # ---- the CMake project ------------------------------------------------------------------
    def cmake_version(self):
        text = self.read("include/qstar/version.hpp")
        cml = self.read("CMakeLists.txt")
        if text is None or cml is None:
            return None
        parts = {}
        for key in ("MAJOR", "MINOR", "PATCH"):
            m = re.search(rf"#define QSTAR_VERSION_{key} (\d+)", text)
            if not m:
                self.fail("include/qstar/version.hpp", f"no QSTAR_VERSION_{key}")
                return None
            parts[key] = m.group(1)
        if not re.search(r"project\(qstar VERSION \$\{_qstar_MAJOR\}\.\$\{_qstar_MINOR\}\.\$\{_qstar_PATCH\}",
                         cml):
            self.fail("CMakeLists.txt", "project(qstar VERSION ...) no longer comes from "
                      "include/qstar/version.hpp; update scripts/check-packaging.py")
            return None
        return f"{parts['MAJOR']}.{parts['MINOR']}.{parts['PATCH']}"

    def cmake_options(self):
        """QSTAR_* cache options defined by the project (option() or set(... CACHE ...))."""
        names = set()
        files = ["CMakeLists.txt"] + sorted(
            os.path.relpath(p, self.root)
            for p in glob.glob(os.path.join(self.root, "cmake", "*.cmake"))
            + glob.glob(os.path.join(self.root, "bindings", "**", "CMakeLists.txt"), recursive=True))
        for rel in files:
            text = self.read(rel) or ""
            names.update(re.findall(r"\boption\(\s*(QSTAR_\w+)", text))
            names.update(re.findall(r"\bset\(\s*(QSTAR_\w+)\s+[^)]*?\bCACHE\b", text))
        return names

    # ---- vcpkg ------------------------------------------------------------------------------
    def vcpkg(self):
        rel_json, rel_port = "ports/qstar/vcpkg.json", "ports/qstar/portfile.cmake"
        text = self.read(rel_json)
        port = self.read(rel_port)
        if text is None or port is None:
            return None, {}, {}
        try:
            manifest = json.loads(text)
        except json.JSONDecodeError as e:
            self.fail(rel_json, f"invalid JSON: {e}")
            return None, {}, {}
        version = manifest.get("version") or manifest.get("version-semver")
        if manifest.get("name") != "qstar":
            self.fail(rel_json, f'"name" is {manifest.get("name")!r}, expected "qstar"')
        features = manifest.get("features", {})
        if set(features) != set(FEATURE_OPTIONS):
            self.fail(rel_json, f"features are {sorted(features)}, expected {sorted(FEATURE_OPTIONS)}")
        torch_deps = features.get("torch", {}).get("dependencies", [])
        libtorch = [d for d in torch_deps if isinstance(d, dict) and d.get("name") == "libtorch"]
        if not libtorch or libtorch[0].get("default-features", True) is not False:
            self.fail(rel_json, 'feature "torch" must depend on {"name": "libtorch", '
                      '"default-features": false}')
        for fn in PORTFILE_FUNCTIONS:
            if not re.search(rf"^\s*{fn}\(", port, re.M):
                self.fail(rel_port, f"does not call {fn}()")
        # vcpkg_check_features(... FEATURES <feature> <option> ...)
        m = re.search(r"vcpkg_check_features\((.*?)\)", port, re.S)
        mapping = {}
        if not m:
            self.fail(rel_port, "no vcpkg_check_features(...) mapping the features to CMake options")
        else:
            words = re.sub(r"#[^\n]*", "", m.group(1)).split()
            if "FEATURES" in words:
                rest = words[words.index("FEATURES") + 1:]
                mapping = dict(zip(rest[0::2], rest[1::2]))
            if mapping != FEATURE_OPTIONS:
                self.fail(rel_port, f"vcpkg_check_features maps {mapping}, expected {FEATURE_OPTIONS}")
        m = re.search(r"vcpkg_cmake_configure\((.*?)\n\)", port, re.S)
        fixed = {}
        if m:
            body = re.sub(r"#[^\n]*", "", m.group(1))
            if "${FEATURE_OPTIONS}" not in body:
                self.fail(rel_port, "vcpkg_cmake_configure does not pass ${FEATURE_OPTIONS}")
            fixed = dict(re.findall(r"-D(QSTAR_\w+)=(\S+)", body))
        return version, fixed, mapping

    # ---- Conan ------------------------------------------------------------------------------
    def conan(self):
        rel = "conanfile.py"
        text = self.read(rel)
        if text is None:
            return None, {}
        try:
            tree = ast.parse(text, rel)
        except SyntaxError as e:
            self.fail(rel, f"syntax error: {e}")
            return None, {}
        cls = next((n for n in tree.body if isinstance(n, ast.ClassDef)), None)
        if cls is None:
            self.fail(rel, "no ConanFile class")
            return None, {}
        attrs = {}
        for node in cls.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                try:
                    attrs[node.targets[0].id] = ast.literal_eval(node.value)
                except ValueError:
                    pass
        if attrs.get("name") != "qstar":
            self.fail(rel, f"name is {attrs.get('name')!r}, expected 'qstar'")
        options = attrs.get("options", {})
        defaults = attrs.get("default_options", {})
        if set(options) != set(CONAN_OPTIONS):
            self.fail(rel, f"options are {sorted(options)}, expected {sorted(CONAN_OPTIONS)}")
        for opt in CONAN_OPTIONS:
            if defaults.get(opt) is not False:
                self.fail(rel, f"default_options[{opt!r}] must be False (header-only by default)")
        for pattern in attrs.get("exports_sources", ()):
            if "LICENSE" in pattern:
                continue  # reported separately below
            if not glob.glob(os.path.join(self.root, pattern)):
                self.fail(rel, f"exports_sources pattern {pattern!r} matches nothing")
        if not re.search(r"def package_id\(self\):\s*\n\s*if self\._header_only:\s*\n\s*self\.info\.clear\(\)", text):
            self.fail(rel, "package_id() must clear the package id when header-only")
        for target in ("qstar::qstar", "qstar::torch"):
            if not re.search(rf'set_property\("cmake_target_name",\s*"{re.escape(target)}"\)', text):
                self.fail(rel, f"package_info() does not declare {target}")
        fixed, mapped = {}, {}
        for name, value in re.findall(r'tc\.variables\["(QSTAR_\w+)"\]\s*=\s*([^\n]+)', text):
            value = re.sub(r"\s+#.*$", "", value).strip()
            m = re.fullmatch(r'"ON" if self\.options\.(\w+) else "OFF"', value)
            if m:
                mapped[m.group(1)] = name
            elif re.fullmatch(r'"[^"]*"', value):
                fixed[name] = value.strip('"')
            else:
                self.fail(rel, f"tc.variables[{name!r}] = {value}: use a string literal or "
                          '"ON" if self.options.<opt> else "OFF"')
        if mapped != CONAN_OPTIONS:
            self.fail(rel, f"options map to {mapped}, expected {CONAN_OPTIONS}")
        if not os.path.isfile(os.path.join(self.root, "test_package", "conanfile.py")):
            self.fail("test_package/conanfile.py", "missing")
        return attrs.get("version"), fixed

    def run(self, test_options):
        version = self.cmake_version()
        cmake_opts = self.cmake_options()
        v_version, v_fixed, _ = self.vcpkg()
        c_version, c_fixed = self.conan()
        if version:
            if v_version != version:
                self.fail("ports/qstar/vcpkg.json", f"version {v_version!r} != CMake project version {version!r}")
            if c_version != version:
                self.fail("conanfile.py", f"version {c_version!r} != CMake project version {version!r}")
        switched = set(FEATURE_OPTIONS.values())
        for where, opts in (("ports/qstar/portfile.cmake", v_fixed), ("conanfile.py", c_fixed)):
            for name in sorted(set(opts) | switched):
                if name not in cmake_opts:
                    self.fail(where, f"passes {name}, which the CMake project does not define")
        if v_fixed != c_fixed:
            self.fail("conanfile.py", f"fixed CMake options {sorted(c_fixed.items())} differ from "
                      f"portfile.cmake's {sorted(v_fixed.items())}")
        if test_options is not None:
            tested = dict(re.findall(r"-D(QSTAR_\w+)=([^;\s]+)", test_options))
            expected = dict(v_fixed)
            expected.update({name: "OFF" for name in switched})  # the header-only variant
            if tested != expected:
                self.fail("tests/package/CMakeLists.txt",
                          f"QSTAR_RECIPE_OPTIONS {sorted(tested.items())} differ from the recipes' "
                          f"header-only options {sorted(expected.items())}")
        if not glob.glob(os.path.join(self.root, "LICENSE*")):
            print("check-packaging: warning: the repository has no LICENSE file; "
                  "vcpkg_install_copyright and the Conan package need one before publishing")
        return version


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    ap.add_argument("--test-options", default=None,
                    help="the ;-separated -D options the ctest consumer configures qstar with")
    args = ap.parse_args()
    checker = Checker(os.path.abspath(args.root))
    version = checker.run(args.test_options)
    if checker.problems:
        for p in checker.problems:
            print(f"check-packaging: {p}")
        return 1
    print(f"check-packaging: ok: vcpkg port and Conan recipe agree with CMake (qstar {version})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
