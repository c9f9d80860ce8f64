# Install rules and the exported CMake package (qstarConfig.cmake, version file, targets).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(DIRECTORY include/qstar DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        PATTERN "torch" EXCLUDE)
install(TARGETS qstar EXPORT qstarTargets)
install(EXPORT qstarTargets NAMESPACE qstar:: FILE qstarTargets.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/qstar)
if(QSTAR_BUILD_CLI)
  install(TARGETS qstar_exe RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()

configure_package_config_file(cmake/qstarConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/qstarConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/qstar)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/qstarConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion ARCH_INDEPENDENT)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/qstarConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/qstarConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/qstar)
