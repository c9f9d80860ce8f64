# Finds LibTorch (Debian's libtorch-dev, or a pip wheel's CMake prefix) and builds
# qstar::torch from src/torch. Public headers (include/qstar/torch) never include torch.
if(NOT Torch_DIR AND NOT DEFINED ENV{Torch_DIR})
  find_package(Python3 COMPONENTS Interpreter QUIET)
  if(Python3_EXECUTABLE)
    execute_process(COMMAND ${Python3_EXECUTABLE} -c "import torch.utils; print(torch.utils.cmake_prefix_path)"
                    OUTPUT_VARIABLE _qstar_torch_prefix OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    if(_qstar_torch_prefix AND EXISTS "${_qstar_torch_prefix}")
      list(APPEND CMAKE_PREFIX_PATH "${_qstar_torch_prefix}")
    endif()
  endif()
endif()
if(QSTAR_WITH_TORCH STREQUAL "ON")
  find_package(Torch REQUIRED)
else()
  find_package(Torch QUIET)
endif()
find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  pkg_check_modules(QSTAR_PCRE2 QUIET IMPORTED_TARGET libpcre2-8)
  pkg_check_modules(QSTAR_UTF8PROC QUIET IMPORTED_TARGET libutf8proc)
endif()

file(GLOB _qstar_torch_sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/src/torch/*.cpp)
if(Torch_FOUND AND QSTAR_PCRE2_FOUND AND QSTAR_UTF8PROC_FOUND AND _qstar_torch_sources)
  set(QSTAR_HAS_TORCH ON)
  add_library(qstar_torch STATIC ${_qstar_torch_sources})
  add_library(qstar::torch ALIAS qstar_torch)
  set_target_properties(qstar_torch PROPERTIES POSITION_INDEPENDENT_CODE ON EXPORT_NAME torch)
  # Installed, a static qstar_torch exports LibTorch as its imported targets (re-created by
  # find_dependency(Torch) in qstarConfig.cmake) rather than TORCH_LIBRARIES' absolute paths.
  target_link_libraries(qstar_torch PUBLIC qstar::qstar
                        PRIVATE "$<BUILD_INTERFACE:${TORCH_LIBRARIES}>"
                                PkgConfig::QSTAR_PCRE2 PkgConfig::QSTAR_UTF8PROC
                        INTERFACE "$<INSTALL_INTERFACE:torch;torch_library;c10>")
  # A LibTorch built with the pre-C++11 libstdc++ ABI (older pip wheels) needs every user of
  # qstar_torch's std::string API on that ABI too.
  if(TORCH_CXX_FLAGS MATCHES "_GLIBCXX_USE_CXX11_ABI=0")
    target_compile_definitions(qstar_torch PUBLIC _GLIBCXX_USE_CXX11_ABI=0)
  endif()
  target_include_directories(qstar_torch PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_compile_options(qstar_torch PRIVATE ${QSTAR_WARNINGS})
  # torch/torch.h costs ~22 s per translation unit: precompile the narrow headers once.
  target_precompile_headers(qstar_torch PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src/torch/pch.hpp)
  message(STATUS "qstar: building qstar::torch with LibTorch ${Torch_VERSION}")
elseif(QSTAR_WITH_TORCH STREQUAL "ON")
  message(FATAL_ERROR "qstar: QSTAR_WITH_TORCH=ON but LibTorch, PCRE2 or utf8proc is missing")
else()
  message(STATUS "qstar: LibTorch, PCRE2 or utf8proc not found; qstar::torch is not built")
endif()
