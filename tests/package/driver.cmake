# Consumer tests of qstar's packaging (docs/packaging.md), run by ctest (tests/package/CMakeLists.txt):
#
#   cmake -DACTION=install -D... -P driver.cmake
#       `cmake --install` the already-built qstar tree QSTAR_BUILD_DIR into WORK_DIR/prefix and
#       check the installed files.
#   cmake -DACTION=find -D... -P driver.cmake
#       configure, build and run tests/package/consumer with find_package(qstar) against that
#       prefix (qstar::qstar, and qstar::torch when it was built), compile and run the
#       README's C++ snippet against it, run the installed qstar program, and check that a
#       bad request (unknown component, wrong major version, a component not built) fails
#       with a clear message.
#   cmake -DACTION=subdir -D... -P driver.cmake
#       build the same consumer with add_subdirectory(QSTAR_SOURCE_DIR), configured with the
#       -D options the vcpkg port and the Conan recipe pass (RECIPE_OPTIONS), then install
#       that configuration and check the package it produces.
#
# Inputs: QSTAR_SOURCE_DIR, QSTAR_BUILD_DIR, WORK_DIR, GENERATOR, CXX_COMPILER, LAUNCHER
# (may be empty), TORCH_DIR (may be empty), PYTHON (may be empty), HAS_TORCH, HAS_HTTP,
# HAS_CLI, JOBS, RECIPE_OPTIONS
# (|-separated -D options).
cmake_minimum_required(VERSION 3.25)

foreach(_v IN ITEMS ACTION QSTAR_SOURCE_DIR WORK_DIR GENERATOR CXX_COMPILER JOBS)
  if(NOT DEFINED ${_v} OR "${${_v}}" STREQUAL "")
    message(FATAL_ERROR "driver.cmake: -D${_v}=... is required")
  endif()
endforeach()
set(_pkg "${QSTAR_SOURCE_DIR}/tests/package")
set(_prefix "${WORK_DIR}/prefix")

# Runs a command; stops the test with its output when it fails.
function(run what)
  string(TIMESTAMP _t0 "%s")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  string(TIMESTAMP _t1 "%s")
  math(EXPR _dt "${_t1} - ${_t0}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "driver: ${what} failed (exit ${rc}):\n${out}")
  endif()
  message(STATUS "driver: ${what}: ok (${_dt} s)")
  set(run_output "${out}" PARENT_SCOPE)
endfunction()

# The common -D options of a consumer or probe configuration. Consumers build at -O0
# without debug information: the checks need seconds of run time, and -O0 halves the
# compile time of a TU that instantiates the searches (CI has 2 cores). A Debug consumer of
# the Release-only installed package also checks that its imported targets map.
set(_common -G "${GENERATOR}" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-O0
    "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}")
if(LAUNCHER)
  list(APPEND _common "-DCMAKE_CXX_COMPILER_LAUNCHER=${LAUNCHER}")
endif()
if(TORCH_DIR)
  list(APPEND _common "-DTorch_DIR=${TORCH_DIR}")
endif()

# Configures tests/package/probe against `prefix` with find_package(qstar VERSION COMPONENTS);
# expects success, or failure with output matching `fail_regex`.
function(probe name prefix version components fail_regex)
  set(dir "${WORK_DIR}/probe-${name}")
  file(REMOVE_RECURSE "${dir}")
  execute_process(
    COMMAND ${CMAKE_COMMAND} -S "${_pkg}/probe" -B "${dir}" ${_common}
            "-DCMAKE_PREFIX_PATH=${prefix}" "-DPROBE_VERSION=${version}"
            "-DPROBE_COMPONENTS=${components}"
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(fail_regex STREQUAL "")
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "driver: probe '${name}' should find qstar but failed:\n${out}")
    endif()
  else()
    if(rc EQUAL 0)
      message(FATAL_ERROR "driver: probe '${name}' should fail but found qstar:\n${out}")
    endif()
    # CMake wraps long messages; compare with whitespace collapsed.
    string(REGEX REPLACE "[ \t\r\n]+" " " flat "${out}")
    if(NOT flat MATCHES "${fail_regex}")
      message(FATAL_ERROR "driver: probe '${name}' failed without the expected message '${fail_regex}':\n${out}")
    endif()
  endif()
  message(STATUS "driver: probe ${name}: ok")
endfunction()

# Configures the probe with OPTIONAL_COMPONENTS `optional`; expects success and the found
# flags printed as `expected` (e.g. "torch=0 cli=0").
function(probe_optional name prefix optional expected)
  set(dir "${WORK_DIR}/probe-${name}")
  file(REMOVE_RECURSE "${dir}")
  execute_process(
    COMMAND ${CMAKE_COMMAND} -S "${_pkg}/probe" -B "${dir}" ${_common}
            "-DCMAKE_PREFIX_PATH=${prefix}" "-DPROBE_OPTIONAL=${optional}"
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0 OR NOT out MATCHES "probe: optional: ${expected}\n")
    message(FATAL_ERROR "driver: probe '${name}' should find qstar with optional ${expected}:\n${out}")
  endif()
  message(STATUS "driver: probe ${name}: ok")
endfunction()

function(expect_file path)
  if(NOT EXISTS "${path}")
    message(FATAL_ERROR "driver: expected ${path} to be installed")
  endif()
endfunction()
function(expect_no_file path)
  if(EXISTS "${path}")
    message(FATAL_ERROR "driver: ${path} should not be installed in this configuration")
  endif()
endfunction()

# Runs the consumer (and the README snippet) built in `dir`.
function(run_consumer dir)
  run("consumer (${dir})" "${dir}/consumer")
  message(STATUS "${run_output}")
  if(NOT run_output MATCHES "consumer: ok")
    message(FATAL_ERROR "driver: the consumer did not print 'consumer: ok'")
  endif()
  run("README snippet" "${dir}/readme_snippet")
endfunction()

if(ACTION STREQUAL "install")
  if(NOT EXISTS "${QSTAR_BUILD_DIR}/cmake_install.cmake")
    message(FATAL_ERROR "driver: ${QSTAR_BUILD_DIR} has no install rules (QSTAR_INSTALL=OFF?)")
  endif()
  file(REMOVE_RECURSE "${_prefix}")
  run("cmake --install ${QSTAR_BUILD_DIR}" ${CMAKE_COMMAND} --install "${QSTAR_BUILD_DIR}"
      --prefix "${_prefix}")
  expect_file("${_prefix}/include/qstar/qstar.hpp")
  file(GLOB _cfg "${_prefix}/lib*/cmake/qstar/qstarConfig.cmake")
  if(NOT _cfg)
    message(FATAL_ERROR "driver: no lib*/cmake/qstar/qstarConfig.cmake under ${_prefix}")
  endif()
  get_filename_component(_cfgdir "${_cfg}" DIRECTORY)
  expect_file("${_cfgdir}/qstarConfigVersion.cmake")
  expect_file("${_cfgdir}/qstarTargets.cmake")
  if(HAS_TORCH)
    expect_file("${_prefix}/include/qstar/torch/model.hpp")
    expect_file("${_cfgdir}/qstarTorchTargets.cmake")
    file(GLOB _lib "${_prefix}/lib*/libqstar_torch.a")
    if(NOT _lib)
      message(FATAL_ERROR "driver: libqstar_torch.a was not installed")
    endif()
  else()
    expect_no_file("${_prefix}/include/qstar/torch")
  endif()
  if(HAS_HTTP)
    expect_file("${_cfgdir}/qstarHttpTargets.cmake")
  endif()
  if(HAS_CLI)
    expect_file("${_prefix}/bin/qstar")
    expect_file("${_prefix}/share/qstar/game24/24.csv")
  endif()

elseif(ACTION STREQUAL "find")
  set(dir "${WORK_DIR}/find")
  file(REMOVE_RECURSE "${dir}")
  run("configure the find_package consumer" ${CMAKE_COMMAND} -S "${_pkg}/consumer" -B "${dir}"
      ${_common} "-DCMAKE_PREFIX_PATH=${_prefix}" -DQSTAR_CONSUMER_MODE=package
      "-DQSTAR_CONSUMER_TORCH=${HAS_TORCH}" "-DQSTAR_README=${QSTAR_SOURCE_DIR}/README.md")
  run("build the find_package consumer" ${CMAKE_COMMAND} --build "${dir}" -j ${JOBS})
  run_consumer("${dir}")
  if(HAS_CLI)
    file(READ "${dir}/qstar_cli_path.txt" _cli)
    # The programmatic generator and the oracle: the default models live in the source tree.
    run("installed qstar solve" "${_cli}" solve "4 5 6 10" --algo beam --n 40 --width 8
        --generator programmatic --verifier oracle)
    if(NOT run_output MATCHES "correct: +yes")
      message(FATAL_ERROR "driver: installed qstar solve did not solve 4 5 6 10:\n${run_output}")
    endif()
    file(GLOB _data "${_prefix}/share/qstar/game24/24.csv")
    run("installed qstar bench" "${_cli}" bench --data "${_data}" --ranks 901-903 --algo beam
        --n 8 --width 4 --generator programmatic --verifier oracle)
  endif()
  # The installed Python package, when the build has one, imports from the prefix.
  file(GLOB_RECURSE _py_init "${_prefix}/__init__.py")
  list(FILTER _py_init INCLUDE REGEX "/qstar/__init__\\.py$")
  if(_py_init AND PYTHON)
    list(GET _py_init 0 _py_init)
    get_filename_component(_py_pkg "${_py_init}" DIRECTORY)
    get_filename_component(_py_dir "${_py_pkg}" DIRECTORY)
    run("import the installed Python package" ${CMAKE_COMMAND} -E env "PYTHONPATH=${_py_dir}"
        "${PYTHON}" -c "import qstar\nprint(qstar.__version__, qstar.__file__)")
    if(NOT run_output MATCHES "^([0-9.]+) ${_py_pkg}/__init__.py")
      message(FATAL_ERROR "driver: python imported another qstar than ${_py_pkg}:\n${run_output}")
    endif()
    message(STATUS "driver: installed Python package: ${run_output}")
  endif()
  set(_expect "torch=0 http=0 cli=0")
  if(HAS_TORCH)
    string(REPLACE "torch=0" "torch=1" _expect "${_expect}")
  endif()
  if(HAS_HTTP)
    string(REPLACE "http=0" "http=1" _expect "${_expect}")
  endif()
  if(HAS_CLI)
    string(REPLACE "cli=0" "cli=1" _expect "${_expect}")
  endif()
  probe_optional(optional "${_prefix}" "torch;http;cli" "${_expect}")
  probe(unknown-component "${_prefix}" "" "bogus"
        "unknown component 'bogus' \\(qstar's components are: qstar, hf, torch, http, cli\\)")
  probe(wrong-major "${_prefix}" "99" ""
        "compatible with requested version \"99\"")
  if(HAS_HTTP)
    probe(http "${_prefix}" "" "qstar;http" "")
  else()
    probe(http-not-built "${_prefix}" "" "http"
          "component 'http' \\(qstar::http\\) was not built in this installation")
  endif()
  if(NOT HAS_TORCH)
    probe(torch-not-built "${_prefix}" "" "torch"
          "component 'torch' \\(qstar::torch\\) was not built in this installation")
  endif()

elseif(ACTION STREQUAL "subdir")
  set(dir "${WORK_DIR}/subdir")
  set(sub_prefix "${WORK_DIR}/subdir-prefix")
  file(REMOVE_RECURSE "${dir}" "${sub_prefix}")
  string(REPLACE "|" ";" _recipe "${RECIPE_OPTIONS}")
  set(_torch OFF)
  if("-DQSTAR_WITH_TORCH=ON" IN_LIST _recipe)
    set(_torch ON)
  endif()
  run("configure the add_subdirectory consumer (${RECIPE_OPTIONS})" ${CMAKE_COMMAND}
      -S "${_pkg}/consumer" -B "${dir}" ${_common} ${_recipe}
      -DQSTAR_CONSUMER_MODE=subdirectory "-DQSTAR_SOURCE_DIR=${QSTAR_SOURCE_DIR}"
      "-DQSTAR_CONSUMER_TORCH=${_torch}" "-DCMAKE_INSTALL_PREFIX=${sub_prefix}")
  # The default target: with EXCLUDE_FROM_ALL that is the consumer and what it links (the
  # README snippet is compiled against the installed package by the find test).
  run("build the add_subdirectory consumer" ${CMAKE_COMMAND} --build "${dir}" -j ${JOBS})
  run("consumer (${dir})" "${dir}/consumer")
  message(STATUS "${run_output}")
  if(NOT run_output MATCHES "consumer: ok")
    message(FATAL_ERROR "driver: the consumer did not print 'consumer: ok'")
  endif()
  # The recipes install this configuration: check what it installs.
  run("install the recipe configuration" ${CMAKE_COMMAND} --install "${dir}/qstar")
  expect_file("${sub_prefix}/include/qstar/qstar.hpp")
  expect_no_file("${sub_prefix}/bin/qstar")
  if(_torch)
    probe(recipe-torch "${sub_prefix}" "0.1" "qstar;torch" "")
  else()
    expect_no_file("${sub_prefix}/include/qstar/torch")
    file(GLOB _libs "${sub_prefix}/lib*/*.a")
    if(_libs)
      message(FATAL_ERROR "driver: a header-only configuration installed libraries: ${_libs}")
    endif()
    probe(recipe-header-only "${sub_prefix}" "0.1" "qstar" "")
    probe(recipe-torch-not-built "${sub_prefix}" "" "torch"
          "component 'torch' \\(qstar::torch\\) was not built in this installation")
    probe(recipe-cli-not-built "${sub_prefix}" "" "cli"
          "component 'cli' \\(qstar::cli\\) was not built in this installation")
    probe_optional(recipe-optional "${sub_prefix}" "torch;http;cli" "torch=0 http=0 cli=0")
  endif()

else()
  message(FATAL_ERROR "driver.cmake: ACTION must be install, find or subdir, not '${ACTION}'")
endif()
message(STATUS "driver: ${ACTION}: all checks passed")
