# qstar::http: the HTTP plug-ins (HttpGenerator, HttpVerifier; libcurl, qstar::hf) and, with LibTorch
# and cpp-httplib, the `qstar serve` server (qstar_http_server). QSTAR_WITH_HTTP: ON (fail
# when libcurl is missing), OFF, AUTO (build what the found libraries allow).
find_package(CURL QUIET)
find_package(Threads REQUIRED)
find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  pkg_check_modules(QSTAR_HTTPLIB QUIET IMPORTED_TARGET cpp-httplib)
endif()

if(CURL_FOUND AND QSTAR_HAS_HF)
  set(QSTAR_HAS_HTTP ON)
  add_library(qstar_http STATIC
    ${CMAKE_CURRENT_SOURCE_DIR}/src/http/transport.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/src/http/generator.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/src/http/llamacpp.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/src/http/verifier.cpp)
  add_library(qstar::http ALIAS qstar_http)
  set_target_properties(qstar_http PROPERTIES POSITION_INDEPENDENT_CODE ON EXPORT_NAME http)
  target_link_libraries(qstar_http PUBLIC qstar::qstar qstar::hf PRIVATE CURL::libcurl Threads::Threads)
  target_include_directories(qstar_http PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_compile_options(qstar_http PRIVATE ${QSTAR_WARNINGS})
  # An old-ABI LibTorch (pip wheels before 2.7, see cmake/torch.cmake and docs/libtorch-2x.md)
  # puts qstar_torch and the CLI on _GLIBCXX_USE_CXX11_ABI=0; qstar_http shares std::string
  # types with them, so it must use the same ABI (and fmt header-only, as qstar_torch does).
  if(QSTAR_HAS_TORCH AND TORCH_CXX_FLAGS MATCHES "_GLIBCXX_USE_CXX11_ABI=0")
    target_compile_definitions(qstar_http PUBLIC _GLIBCXX_USE_CXX11_ABI=0)
    if(TARGET fmt::fmt-header-only)
      target_link_libraries(qstar_http PUBLIC fmt::fmt-header-only)
    endif()
  endif()
  message(STATUS "qstar: building qstar::http with libcurl ${CURL_VERSION_STRING}")
  if(QSTAR_HAS_TORCH AND QSTAR_HTTPLIB_FOUND)
    set(QSTAR_HAS_HTTP_SERVER ON)
    add_library(qstar_http_server STATIC ${CMAKE_CURRENT_SOURCE_DIR}/src/http/server.cpp)
    target_link_libraries(qstar_http_server PUBLIC qstar::qstar qstar::torch
                          PRIVATE PkgConfig::QSTAR_HTTPLIB Threads::Threads)
    target_include_directories(qstar_http_server PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
    target_compile_options(qstar_http_server PRIVATE ${QSTAR_WARNINGS})
    message(STATUS "qstar: building qstar serve with cpp-httplib ${QSTAR_HTTPLIB_VERSION}")
  else()
    message(STATUS "qstar: qstar serve needs LibTorch and cpp-httplib (libcpp-httplib-dev); not built")
  endif()
elseif(QSTAR_WITH_HTTP STREQUAL "ON")
  message(FATAL_ERROR "qstar: QSTAR_WITH_HTTP=ON but libcurl (libcurl4-openssl-dev) or qstar::hf (PCRE2, utf8proc) is missing")
else()
  message(STATUS "qstar: libcurl or qstar::hf not found; qstar::http is not built")
endif()
