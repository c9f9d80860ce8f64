"""Conan 2 recipe for qstar (docs/packaging.md).

    conan create .                                    # header-only core: qstar::qstar
    conan create . -o "qstar/*:with_torch=True"       # + qstar::torch (static library)
    conan create . -o "qstar/*:with_python=True"      # + the Python module

The CMake options generate() passes are the ones tests/package builds and installs
(ctest: package_subdir_consumer); scripts/check-packaging.py (ctest: check_packaging) keeps
them, the options and the version in step with CMakeLists.txt and ports/qstar/.
Conan is not installed where qstar's CI runs, so this recipe is checked statically only.
"""
import os

from conan import ConanFile
from conan.tools.build import check_min_cppstd
from conan.tools.cmake import CMake, CMakeDeps, CMakeToolchain, cmake_layout
from conan.tools.files import copy, rmdir
from conan.tools.gnu import PkgConfigDeps

required_conan_version = ">=2.0"


class QstarConan(ConanFile):
    name = "qstar"
    version = "0.1.0"
    license = "MIT"
    description = ("Process-supervised search: generators, verifiers and test-time search "
                   "(best-of-N, beam, DVTS, best-first, MCTS) in header-only C++20, with "
                   "optional LibTorch backends")
    topics = ("search", "mcts", "beam-search", "reward-model", "llm", "header-only")
    package_type = "header-library"
    settings = "os", "arch", "compiler", "build_type"
    options = {
        "with_torch": [True, False],   # qstar::torch, -DQSTAR_WITH_TORCH=ON
        "with_python": [True, False],  # the Python module, -DQSTAR_BUILD_PYTHON=ON
    }
    default_options = {
        "with_torch": False,
        "with_python": False,
    }
    exports_sources = ("CMakeLists.txt", "cmake/*", "include/*", "src/*", "bindings/*",
                       "data/*", "LICENSE*")

    @property
    def _header_only(self):
        return not self.options.with_torch and not self.options.with_python

    def configure(self):
        if not self._header_only:
            self.package_type = "static-library"

    def layout(self):
        cmake_layout(self, src_folder=".")

    def requirements(self):
        # qstar's public headers include fmt.
        self.requires("fmt/[>=9 <12]", transitive_headers=True)
        if self.options.with_torch:
            self.requires("libtorch/[>=1.13 <3]")
            self.requires("pcre2/[>=10.40 <11]")
            self.requires("utf8proc/[>=2.8 <3]")
        if self.options.with_python:
            self.requires("pybind11/[>=2.10 <3]")

    def build_requirements(self):
        if self.options.with_torch:
            # qstar::torch finds PCRE2 and utf8proc through pkg-config (PkgConfigDeps below).
            self.tool_requires("pkgconf/[>=1.9 <3]")

    def validate(self):
        check_min_cppstd(self, 20)

    def package_id(self):
        if self._header_only:
            self.info.clear()

    def generate(self):
        tc = CMakeToolchain(self)
        tc.variables["QSTAR_BUILD_TESTS"] = "OFF"
        tc.variables["QSTAR_BUILD_EXAMPLES"] = "OFF"
        tc.variables["QSTAR_BUILD_BENCHMARKS"] = "OFF"
        tc.variables["QSTAR_BUILD_CLI"] = "OFF"
        tc.variables["QSTAR_INSTALL"] = "ON"
        tc.variables["QSTAR_WITH_HTTP"] = "OFF"  # qstar::http is not packaged (yet)
        tc.variables["QSTAR_WITH_TORCH"] = "ON" if self.options.with_torch else "OFF"
        tc.variables["QSTAR_BUILD_PYTHON"] = "ON" if self.options.with_python else "OFF"
        tc.generate()
        CMakeDeps(self).generate()
        if self.options.with_torch:
            PkgConfigDeps(self).generate()

    def build(self):
        cmake = CMake(self)
        cmake.configure()
        if not self._header_only:
            cmake.build()

    def package(self):
        copy(self, "LICENSE*", src=self.source_folder,
             dst=os.path.join(self.package_folder, "licenses"))
        cmake = CMake(self)
        cmake.install()
        # Consumers get the targets from package_info() (CMakeDeps), not qstar's own files.
        rmdir(self, os.path.join(self.package_folder, "lib", "cmake"))

    def package_info(self):
        self.cpp_info.set_property("cmake_file_name", "qstar")

        core = self.cpp_info.components["qstar"]
        core.set_property("cmake_target_name", "qstar::qstar")
        core.requires = ["fmt::fmt"]
        core.bindirs = []
        core.libdirs = []

        if self.options.with_torch:
            torch = self.cpp_info.components["torch"]
            torch.set_property("cmake_target_name", "qstar::torch")
            torch.libs = ["qstar_torch"]
            torch.requires = ["qstar", "libtorch::libtorch", "pcre2::pcre2-8",
                              "utf8proc::utf8proc"]
