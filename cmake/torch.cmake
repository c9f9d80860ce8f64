# Finds LibTorch (Debian's libtorch-dev, or a pip wheel's CMake prefix) and builds
# qstar::torch from src/torch (on qstar::hf, cmake/hf.cmake), and, with QSTAR_BUILD_TRAIN,
# the trainer qstar::train (src/train) and the Game of 24 recipe qstar_game24_train
# (src/tasks/game24/train_*.cpp). Public headers (include/qstar/torch, include/qstar/train)
# never include torch.
if(NOT Torch_DIR AND NOT DEFINED ENV{Torch_DIR})
  find_package(Python3 COMPONENTS Interpreter QUIET)
  if(Python3_EXECUTABLE)
    execute_process(COMMAND ${Python3_EXECUTABLE} -c
                    "import torch.utils; print(torch.utils.cmake_prefix_path); print(torch.version.cuda or '')"
                    OUTPUT_VARIABLE _qstar_torch_out OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    string(REPLACE "\n" ";" _qstar_torch_out "${_qstar_torch_out}")
    list(LENGTH _qstar_torch_out _qstar_n)
    set(_qstar_torch_prefix "")
    set(_qstar_torch_cuda "")
    if(_qstar_n GREATER 0)
      list(GET _qstar_torch_out 0 _qstar_torch_prefix)
    endif()
    if(_qstar_n GREATER 1)
      list(GET _qstar_torch_out 1 _qstar_torch_cuda)
    endif()
    # A CUDA wheel's Caffe2Config.cmake needs the CUDA toolkit (nvcc, enable_language(CUDA))
    # and stops the configure with FATAL_ERROR without it, even under find_package(QUIET).
    if(_qstar_torch_cuda AND QSTAR_WITH_TORCH STREQUAL "AUTO")
      include(CheckLanguage)
      check_language(CUDA)
      if(NOT CMAKE_CUDA_COMPILER)
        message(STATUS "qstar: the pip torch in ${_qstar_torch_prefix} is a CUDA ${_qstar_torch_cuda} "
                       "build and no CUDA compiler was found: not using it (install the CPU wheel or "
                       "the CUDA toolkit)")
        set(_qstar_torch_prefix "")
      endif()
    endif()
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
set(_qstar_torch_sources
  src/torch/kv_cache.cpp
  src/torch/decoder.cpp
  src/torch/models/heads.cpp
  src/torch/models/llama.cpp
  src/torch/models/qwen2.cpp
  src/torch/models/qwen3.cpp
  src/torch/models/mistral.cpp
  src/torch/models/rope.cpp
  src/torch/lm_generator.cpp
  src/torch/model.cpp
  src/torch/prefill.cpp
  src/torch/prm.cpp
  src/torch/prm_layout.cpp
  src/torch/prm_script.cpp
  src/torch/sampler.cpp
  src/torch/threads.cpp
  src/torch/kernels/pool.cpp
  src/torch/kernels/small_m_linear.cpp
  src/torch/kernels/small_m_tensor.cpp)
list(TRANSFORM _qstar_torch_sources PREPEND ${CMAKE_CURRENT_SOURCE_DIR}/)
if(Torch_FOUND AND QSTAR_HAS_HF)
  set(QSTAR_HAS_TORCH ON)
  add_library(qstar_torch STATIC ${_qstar_torch_sources})
  add_library(qstar::torch ALIAS qstar_torch)
  set_target_properties(qstar_torch PROPERTIES POSITION_INDEPENDENT_CODE ON EXPORT_NAME torch)
  # Installed, a static qstar_torch exports LibTorch as its imported targets (re-created by
  # find_dependency(Torch) in qstarConfig.cmake) rather than TORCH_LIBRARIES' absolute paths.
  target_link_libraries(qstar_torch PUBLIC qstar::qstar qstar::hf
                        PRIVATE "$<BUILD_INTERFACE:${TORCH_LIBRARIES}>"
                        INTERFACE "$<INSTALL_INTERFACE:torch;torch_library;c10>")
  # A LibTorch built with the pre-C++11 libstdc++ ABI (older pip wheels) needs every user of
  # qstar_torch's std::string API on that ABI too.
  if(TORCH_CXX_FLAGS MATCHES "_GLIBCXX_USE_CXX11_ABI=0")
    target_compile_definitions(qstar_torch PUBLIC _GLIBCXX_USE_CXX11_ABI=0)
    target_compile_definitions(qstar_hf PUBLIC _GLIBCXX_USE_CXX11_ABI=0)
    # A shared libfmt (Debian's, Conan's) exports fmt::vformat only with the C++11-ABI
    # std::string: old-ABI code must use fmt header-only, or fmt::format fails to link.
    if(TARGET fmt::fmt-header-only)
      target_link_libraries(qstar_torch PUBLIC fmt::fmt-header-only)
      target_link_libraries(qstar_hf PUBLIC fmt::fmt-header-only)
    endif()
  endif()
  target_include_directories(qstar_torch PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_compile_options(qstar_torch PRIVATE ${QSTAR_WARNINGS})
  # torch/torch.h costs ~22 s per translation unit: precompile the narrow headers once.
  target_precompile_headers(qstar_torch PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src/torch/pch.hpp)
  message(STATUS "qstar: building qstar::torch with LibTorch ${Torch_VERSION}")

  # ---- qstar::train: the generic trainer (optional) ----
  option(QSTAR_BUILD_TRAIN "Build qstar::train (the LibTorch trainer) and the task recipes" ON)
  set(QSTAR_HAS_TRAIN OFF)
  if(QSTAR_BUILD_TRAIN)
    set(QSTAR_HAS_TRAIN ON)
    set(_qstar_train_sources src/train/recipe.cpp src/train/trainable_decoder.cpp
        src/train/trainer.cpp)
    list(TRANSFORM _qstar_train_sources PREPEND ${CMAKE_CURRENT_SOURCE_DIR}/)
    add_library(qstar_train STATIC ${_qstar_train_sources})
    add_library(qstar::train ALIAS qstar_train)
    set_target_properties(qstar_train PROPERTIES POSITION_INDEPENDENT_CODE ON EXPORT_NAME train)
    target_link_libraries(qstar_train PUBLIC qstar::torch
                          PRIVATE "$<BUILD_INTERFACE:${TORCH_LIBRARIES}>"
                          INTERFACE "$<INSTALL_INTERFACE:torch;torch_library;c10>")
    target_include_directories(qstar_train PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
    target_compile_options(qstar_train PRIVATE ${QSTAR_WARNINGS})
    target_precompile_headers(qstar_train PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src/torch/pch.hpp)
    # The Game of 24 recipe lives with the task: no LibTorch, only the public headers.
    add_library(qstar_game24_train STATIC
      ${CMAKE_CURRENT_SOURCE_DIR}/src/tasks/game24/train_cards.cpp
      ${CMAKE_CURRENT_SOURCE_DIR}/src/tasks/game24/train_recipe.cpp)
    set_target_properties(qstar_game24_train PROPERTIES POSITION_INDEPENDENT_CODE ON)
    target_link_libraries(qstar_game24_train PUBLIC qstar::train)
    target_compile_options(qstar_game24_train PRIVATE ${QSTAR_WARNINGS})
    message(STATUS "qstar: building qstar::train and the Game of 24 recipe")
  endif()
elseif(QSTAR_WITH_TORCH STREQUAL "ON")
  message(FATAL_ERROR "qstar: QSTAR_WITH_TORCH=ON but LibTorch, PCRE2 or utf8proc is missing")
else()
  message(STATUS "qstar: LibTorch (or qstar::hf) not found; qstar::torch is not built")
endif()
