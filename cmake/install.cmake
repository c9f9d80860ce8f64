# Install rules and the exported CMake package: qstarConfig.cmake, qstarConfigVersion.cmake
# (SameMajorVersion) and one export file per component:
#   qstarTargets.cmake       qstar::qstar  header-only core (always)
#   qstarHfTargets.cmake     qstar::hf     HF model folders and tokenizers, no LibTorch (when built)
#   qstarTorchTargets.cmake  qstar::torch  LibTorch backends, a static library (when built)
#   qstarHttpTargets.cmake   qstar::http   HTTP generator/verifier, a static library (when built)
#   qstarCliTargets.cmake    qstar::cli    the `qstar` executable (when built)
# docs/packaging.md describes the layout and how each package manager uses it.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(QSTAR_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/qstar" CACHE STRING
    "Where qstarConfig.cmake and the export files are installed (relative to the prefix)")
mark_as_advanced(QSTAR_INSTALL_CMAKEDIR)

set(_qstar_components qstar)

# ---- qstar::qstar ------------------------------------------------------------------------
# qstar::train (the trainer, cmake/torch.cmake) and the Game of 24 recipe are not installed
# (the `qstar train` program is): their headers stay out of the package. Neither is the math
# task (its grader is the compiled qstar_math, built into the programs and the Python module)
# nor the list of built-in tasks that names it.
install(DIRECTORY include/qstar DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        PATTERN "hf" EXCLUDE PATTERN "torch" EXCLUDE PATTERN "http" EXCLUDE
        PATTERN "trainer.hpp" EXCLUDE PATTERN "recipe.hpp" EXCLUDE PATTERN "train_recipe.hpp" EXCLUDE
        PATTERN "math" EXCLUDE PATTERN "builtin.hpp" EXCLUDE)
install(TARGETS qstar EXPORT qstarTargets)
install(EXPORT qstarTargets NAMESPACE qstar:: FILE qstarTargets.cmake
        DESTINATION ${QSTAR_INSTALL_CMAKEDIR})

# ---- qstar::hf ---------------------------------------------------------------------------
if(QSTAR_HAS_HF)
  list(APPEND _qstar_components hf)
  install(DIRECTORY include/qstar/hf DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/qstar)
  install(TARGETS qstar_hf EXPORT qstarHfTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(EXPORT qstarHfTargets NAMESPACE qstar:: FILE qstarHfTargets.cmake
          DESTINATION ${QSTAR_INSTALL_CMAKEDIR})
endif()

# ---- qstar::torch ------------------------------------------------------------------------
if(QSTAR_HAS_TORCH)
  list(APPEND _qstar_components torch)
  install(DIRECTORY include/qstar/torch DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/qstar)
  install(TARGETS qstar_torch EXPORT qstarTorchTargets
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(EXPORT qstarTorchTargets NAMESPACE qstar:: FILE qstarTorchTargets.cmake
          DESTINATION ${QSTAR_INSTALL_CMAKEDIR})
endif()

# ---- qstar::http ------------------------------------------------------------------------
if(QSTAR_HAS_HTTP AND TARGET qstar_http)
  list(APPEND _qstar_components http)
  # server.hpp is the header of qstar_http_server (`qstar serve`'s server), which is not
  # installed: only headers of installed libraries are.
  install(DIRECTORY include/qstar/http DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/qstar
          PATTERN "server.hpp" EXCLUDE)
  install(TARGETS qstar_http EXPORT qstarHttpTargets
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(EXPORT qstarHttpTargets NAMESPACE qstar:: FILE qstarHttpTargets.cmake
          DESTINATION ${QSTAR_INSTALL_CMAKEDIR})
endif()

# ---- qstar::cli --------------------------------------------------------------------------
if(QSTAR_BUILD_CLI)
  list(APPEND _qstar_components cli)
  install(TARGETS qstar_exe EXPORT qstarCliTargets
          RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  install(EXPORT qstarCliTargets NAMESPACE qstar:: FILE qstarCliTargets.cmake
          DESTINATION ${QSTAR_INSTALL_CMAKEDIR})
  # The puzzles `qstar bench --data` reads, with their licence.
  install(FILES data/game24/24.csv data/game24/LICENSE data/game24/README.md
          DESTINATION ${CMAKE_INSTALL_DATADIR}/qstar/game24)
  # The math task's data (GSM8K test/train, MATH-500) with their licences.
  install(FILES data/math/gsm8k_test.jsonl data/math/gsm8k_train.jsonl data/math/math500_test.jsonl
          data/math/LICENSE-gsm8k data/math/LICENSE-prm800k data/math/README.md
          DESTINATION ${CMAKE_INSTALL_DATADIR}/qstar/math)
  # The trained default models a LibTorch-enabled CLI uses (issue #4), when the checkout has
  # them. The installed program finds them with QSTAR_MODELS_DIR=<prefix>/share/qstar/models.
  if(QSTAR_HAS_TORCH AND EXISTS "${PROJECT_SOURCE_DIR}/models")
    install(DIRECTORY models/ DESTINATION ${CMAKE_INSTALL_DATADIR}/qstar/models
            PATTERN "logs" EXCLUDE)
  endif()
endif()

# ---- the package files -------------------------------------------------------------------
# Substituted into qstarConfig.cmake: the components this installation provides.
set(QSTAR_PACKAGE_COMPONENTS "${_qstar_components}")
configure_package_config_file(cmake/qstarConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/qstarConfig.cmake
  INSTALL_DESTINATION ${QSTAR_INSTALL_CMAKEDIR})
# A header-only installation works for any architecture; one with the static library or
# the executable does not.
if(_qstar_components STREQUAL "qstar")
  set(_qstar_arch ARCH_INDEPENDENT)
else()
  set(_qstar_arch "")
endif()
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/qstarConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion ${_qstar_arch})
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/qstarConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/qstarConfigVersion.cmake
        DESTINATION ${QSTAR_INSTALL_CMAKEDIR})
unset(_qstar_arch)
unset(_qstar_components)
