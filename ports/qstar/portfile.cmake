# vcpkg overlay port for qstar (docs/packaging.md). It builds the checkout it lives in:
#   vcpkg install qstar --overlay-ports=<checkout>/ports            # header-only core
#   vcpkg install "qstar[torch]" --overlay-ports=<checkout>/ports   # + qstar::torch
# The QSTAR_* options below are the ones tests/package (ctest: package_subdir_consumer)
# builds and installs; scripts/check-packaging.py (ctest: check_packaging) keeps them, the
# features and the version in step with CMakeLists.txt and conanfile.py.
get_filename_component(SOURCE_PATH "${CMAKE_CURRENT_LIST_DIR}/../.." ABSOLUTE)
if(NOT EXISTS "${SOURCE_PATH}/include/qstar/qstar.hpp")
  message(FATAL_ERROR "qstar port: ${SOURCE_PATH} is not a qstar checkout; use the port from its ports/ folder")
endif()

vcpkg_check_features(OUT_FEATURE_OPTIONS FEATURE_OPTIONS
  FEATURES
    torch   QSTAR_WITH_TORCH
    python  QSTAR_BUILD_PYTHON
)

set(tool_options "")
if("torch" IN_LIST FEATURES)
  # qstar::torch finds PCRE2 and utf8proc through pkg-config.
  vcpkg_find_acquire_program(PKGCONFIG)
  list(APPEND tool_options "-DPKG_CONFIG_EXECUTABLE=${PKGCONFIG}")
endif()
if(NOT FEATURES MATCHES "torch|python")
  # Header-only: nothing differs between debug and release.
  set(VCPKG_BUILD_TYPE release)
endif()

vcpkg_cmake_configure(
  SOURCE_PATH "${SOURCE_PATH}"
  OPTIONS
    ${FEATURE_OPTIONS}
    ${tool_options}
    -DQSTAR_BUILD_TESTS=OFF
    -DQSTAR_BUILD_EXAMPLES=OFF
    -DQSTAR_BUILD_BENCHMARKS=OFF
    -DQSTAR_BUILD_CLI=OFF
    -DQSTAR_INSTALL=ON
    -DQSTAR_WITH_HTTP=OFF
)
vcpkg_cmake_install()
vcpkg_cmake_config_fixup(PACKAGE_NAME qstar CONFIG_PATH lib/cmake/qstar)

file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/debug/include" "${CURRENT_PACKAGES_DIR}/debug/share")
if(NOT FEATURES MATCHES "torch|python")
  # Only headers and share/qstar remain; drop the emptied lib/ folder.
  file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/lib" "${CURRENT_PACKAGES_DIR}/debug")
endif()

file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
