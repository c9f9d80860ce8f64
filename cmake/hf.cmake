# qstar::hf: reading Hugging Face model folders without LibTorch: config.json, safetensors
# (and the model-folder writer), torch.save checkpoints (pytorch_model.bin), tokenizer.json.
# Needs PCRE2 and utf8proc (pkg-config).
# qstar::torch and qstar::http build on it.
# SentencePiece tokenizer.model files need libsentencepiece (pkg-config "sentencepiece",
# Debian libsentencepiece-dev): optional.
set(QSTAR_WITH_SENTENCEPIECE AUTO CACHE STRING
    "Read SentencePiece tokenizer.model files (libsentencepiece): ON, OFF or AUTO")
set_property(CACHE QSTAR_WITH_SENTENCEPIECE PROPERTY STRINGS ON OFF AUTO)
find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  pkg_check_modules(QSTAR_PCRE2 QUIET IMPORTED_TARGET libpcre2-8)
  pkg_check_modules(QSTAR_UTF8PROC QUIET IMPORTED_TARGET libutf8proc)
  if(NOT QSTAR_WITH_SENTENCEPIECE STREQUAL "OFF")
    pkg_check_modules(QSTAR_SENTENCEPIECE QUIET IMPORTED_TARGET sentencepiece)
  endif()
endif()
set(QSTAR_HAS_SENTENCEPIECE OFF)
if(QSTAR_SENTENCEPIECE_FOUND AND NOT QSTAR_WITH_SENTENCEPIECE STREQUAL "OFF")
  set(QSTAR_HAS_SENTENCEPIECE ON)
elseif(QSTAR_WITH_SENTENCEPIECE STREQUAL "ON")
  message(FATAL_ERROR "qstar: QSTAR_WITH_SENTENCEPIECE=ON but libsentencepiece (libsentencepiece-dev, "
                      "pkg-config sentencepiece) is missing")
endif()

# The tokenizer, one file per stage (src/hf/tokenizer/internal.hpp says which holds what);
# tests/fuzz/CMakeLists.txt lists the same files for fuzz_tokenizer.
set(QSTAR_HF_TOKENIZER_SOURCES
  src/hf/tokenizer/added_tokens.cpp
  src/hf/tokenizer/decoders.cpp
  src/hf/tokenizer/models.cpp
  src/hf/tokenizer/normalizers.cpp
  src/hf/tokenizer/post_processors.cpp
  src/hf/tokenizer/pre_tokenizers.cpp
  src/hf/tokenizer/sentencepiece.cpp
  src/hf/tokenizer/sentencepiece_config.cpp
  src/hf/tokenizer/sentencepiece_model.cpp
  src/hf/tokenizer/support.cpp
  src/hf/tokenizer/tokenizer.cpp)
# The chat-template (Jinja subset) interpreter, one file per stage (src/hf/jinja/internal.hpp);
# tests/fuzz/CMakeLists.txt lists the same files for fuzz_jinja.
set(QSTAR_HF_JINJA_SOURCES
  src/hf/jinja/chat_template.cpp
  src/hf/jinja/eval.cpp
  src/hf/jinja/filters.cpp
  src/hf/jinja/lexer.cpp
  src/hf/jinja/methods.cpp
  src/hf/jinja/parser.cpp
  src/hf/jinja/value.cpp)
set(QSTAR_HF_SOURCES
  src/hf/config.cpp
  src/hf/model_io.cpp
  src/hf/pickle.cpp
  src/hf/safetensors.cpp
  src/hf/torch_bin.cpp
  src/hf/zip.cpp
  ${QSTAR_HF_TOKENIZER_SOURCES}
  ${QSTAR_HF_JINJA_SOURCES})
list(TRANSFORM QSTAR_HF_SOURCES PREPEND ${CMAKE_CURRENT_SOURCE_DIR}/)

if(QSTAR_PCRE2_FOUND AND QSTAR_UTF8PROC_FOUND)
  set(QSTAR_HAS_HF ON)
  add_library(qstar_hf STATIC ${QSTAR_HF_SOURCES})
  add_library(qstar::hf ALIAS qstar_hf)
  set_target_properties(qstar_hf PROPERTIES POSITION_INDEPENDENT_CODE ON EXPORT_NAME hf)
  target_link_libraries(qstar_hf PUBLIC qstar::qstar
                        PRIVATE PkgConfig::QSTAR_PCRE2 PkgConfig::QSTAR_UTF8PROC)
  target_include_directories(qstar_hf PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_compile_options(qstar_hf PRIVATE ${QSTAR_WARNINGS})
  if(QSTAR_HAS_SENTENCEPIECE)
    # libsentencepiece exports its own protobuf-lite, which clashes with LibTorch's
    # libprotobuf in one process: qstar_hf does not link it, but dlopens (RTLD_DEEPBIND) the
    # module libqstar_sentencepiece.so, the only code that does
    # (src/hf/tokenizer/sentencepiece_module.cpp). Found through $QSTAR_SENTENCEPIECE_MODULE,
    # the build tree, or the installed copy (lib/).
    include(GNUInstallDirs)
    add_library(qstar_sentencepiece MODULE src/hf/tokenizer/sentencepiece_module.cpp)
    target_link_libraries(qstar_sentencepiece PRIVATE PkgConfig::QSTAR_SENTENCEPIECE)
    target_compile_options(qstar_sentencepiece PRIVATE ${QSTAR_WARNINGS})
    set_target_properties(qstar_sentencepiece PROPERTIES CXX_VISIBILITY_PRESET hidden
                          VISIBILITY_INLINES_HIDDEN ON LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR})
    install(TARGETS qstar_sentencepiece LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
    add_dependencies(qstar_hf qstar_sentencepiece)
    target_link_libraries(qstar_hf PRIVATE ${CMAKE_DL_LIBS})
    target_compile_definitions(qstar_hf PRIVATE QSTAR_HAS_SENTENCEPIECE=1
      QSTAR_SPM_MODULE_BUILD="$<TARGET_FILE:qstar_sentencepiece>"
      QSTAR_SPM_MODULE_INSTALL="${CMAKE_INSTALL_FULL_LIBDIR}/$<TARGET_FILE_NAME:qstar_sentencepiece>")
    set(_qstar_spm "SentencePiece ${QSTAR_SENTENCEPIECE_VERSION}")
  else()
    set(_qstar_spm "no SentencePiece: tokenizer.model folders need libsentencepiece-dev")
  endif()
  message(STATUS "qstar: building qstar::hf (PCRE2 ${QSTAR_PCRE2_VERSION}, utf8proc ${QSTAR_UTF8PROC_VERSION}, ${_qstar_spm})")
elseif(QSTAR_WITH_HF STREQUAL "ON")
  message(FATAL_ERROR "qstar: QSTAR_WITH_HF=ON but PCRE2 (libpcre2-dev) or utf8proc (libutf8proc-dev) is missing")
else()
  set(QSTAR_HAS_HF OFF)
  message(STATUS "qstar: PCRE2 (libpcre2-dev) or utf8proc (libutf8proc-dev) not found; qstar::hf, "
                 "qstar::torch and qstar::http are not built")
endif()
