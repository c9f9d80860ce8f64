// detail::SpmModel: a SentencePiece model run by libsentencepiece through the C interface of
// libqstar_sentencepiece (sentencepiece_module.cpp says why it is a separate module). The
// module is loaded once, with dlopen(RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND), from the first
// of: $QSTAR_SENTENCEPIECE_MODULE, the build tree's copy, the installed copy. With
// QSTAR_SPM_DIRECT (the fuzz build) the module's functions are linked in instead.
#include <cstdlib>
#include <filesystem>
#include <mutex>

#include <fmt/format.h>

#include "qstar/error.hpp"
#include "sentencepiece.hpp"

#if defined(QSTAR_HAS_SENTENCEPIECE)
#include "sentencepiece_module.h"
#if !defined(QSTAR_SPM_DIRECT)
#include <dlfcn.h>
#endif
#endif

namespace qstar::hf::detail {

#if defined(QSTAR_HAS_SENTENCEPIECE)

namespace {

struct Api {
  qstar_spm_load_fn load = nullptr;
  qstar_spm_free_fn free = nullptr;
  qstar_spm_size_fn size = nullptr;
  qstar_spm_piece_fn piece = nullptr;
  qstar_spm_type_fn type = nullptr;
  qstar_spm_encode_fn encode = nullptr;
  std::string error;  // why it is not there
};

#if defined(QSTAR_SPM_DIRECT)
Api load_api() {
  Api a;
  a.load = &qstar_spm_load;
  a.free = &qstar_spm_free;
  a.size = &qstar_spm_size;
  a.piece = &qstar_spm_piece;
  a.type = &qstar_spm_type;
  a.encode = &qstar_spm_encode;
  return a;
}
#else
std::vector<std::string> module_paths() {
  std::vector<std::string> out;
  if (const char* env = std::getenv("QSTAR_SENTENCEPIECE_MODULE"); env && *env) out.emplace_back(env);
#ifdef QSTAR_SPM_MODULE_BUILD
  out.emplace_back(QSTAR_SPM_MODULE_BUILD);
#endif
#ifdef QSTAR_SPM_MODULE_INSTALL
  out.emplace_back(QSTAR_SPM_MODULE_INSTALL);
#endif
  return out;
}

Api load_api() {
  Api a;
  std::string tried;
  for (const std::string& path : module_paths()) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
      tried += fmt::format("{}{}: no such file", tried.empty() ? "" : "; ", path);
      continue;
    }
    int flags = RTLD_NOW | RTLD_LOCAL;
#if !defined(__SANITIZE_ADDRESS__) && !defined(QSTAR_SPM_NO_DEEPBIND)
    flags |= RTLD_DEEPBIND;  // libsentencepiece binds to its own protobuf (the sanitizers refuse it)
#endif
    void* h = dlopen(path.c_str(), flags);
    if (h == nullptr) {
      const char* e = dlerror();
      tried += fmt::format("{}{}: {}", tried.empty() ? "" : "; ", path, e ? e : "dlopen failed");
      continue;
    }
    a.load = reinterpret_cast<qstar_spm_load_fn>(dlsym(h, "qstar_spm_load"));
    a.free = reinterpret_cast<qstar_spm_free_fn>(dlsym(h, "qstar_spm_free"));
    a.size = reinterpret_cast<qstar_spm_size_fn>(dlsym(h, "qstar_spm_size"));
    a.piece = reinterpret_cast<qstar_spm_piece_fn>(dlsym(h, "qstar_spm_piece"));
    a.type = reinterpret_cast<qstar_spm_type_fn>(dlsym(h, "qstar_spm_type"));
    a.encode = reinterpret_cast<qstar_spm_encode_fn>(dlsym(h, "qstar_spm_encode"));
    if (a.load && a.free && a.size && a.piece && a.type && a.encode) return a;  // kept loaded
    tried += fmt::format("{}{}: not a qstar SentencePiece module", tried.empty() ? "" : "; ", path);
    a = Api{};
    dlclose(h);
  }
  a.error = fmt::format("the SentencePiece module libqstar_sentencepiece.so was not found ({}); set "
                        "QSTAR_SENTENCEPIECE_MODULE to its path",
                        tried.empty() ? "no path known" : tried);
  return a;
}
#endif

const Api& api() {
  static const Api a = load_api();
  return a;
}

void push_id(void* ctx, int id) { static_cast<std::vector<std::int32_t>*>(ctx)->push_back(id); }

}  // namespace

bool spm_module_available() noexcept {
  try {
    return api().load != nullptr;
  } catch (...) {
    return false;
  }
}

std::string spm_unavailable_reason() { return api().error; }

std::shared_ptr<const SpmModel> SpmModel::load(std::string_view bytes, std::string_view source) {
  const Api& a = api();
  if (a.load == nullptr) throw IoError(fmt::format("{}: cannot read a SentencePiece model: {}", source, a.error));
  char err[512] = {0};
  qstar_spm* h = a.load(bytes.data(), bytes.size(), err, sizeof err);
  if (h == nullptr) throw ParseError(fmt::format("{}: not a SentencePiece model: {}", source, err));
  auto m = std::shared_ptr<SpmModel>(new SpmModel());
  m->handle_ = h;
  m->source_ = std::string(source);
  return m;
}

SpmModel::~SpmModel() {
  if (handle_ != nullptr) api().free(static_cast<qstar_spm*>(handle_));
}

int SpmModel::size() const { return api().size(static_cast<const qstar_spm*>(handle_)); }

std::string_view SpmModel::piece(int id) const {
  std::size_t len = 0;
  const char* p = api().piece(static_cast<const qstar_spm*>(handle_), id, &len);
  return {p, len};
}

SpmModel::Type SpmModel::type(int id) const {
  return static_cast<Type>(api().type(static_cast<const qstar_spm*>(handle_), id));
}

void SpmModel::encode(std::string_view text, std::vector<std::int32_t>& out) const {
  char err[512] = {0};
  if (!api().encode(static_cast<const qstar_spm*>(handle_), text.data(), text.size(), &push_id, &out, err,
                    sizeof err))
    throw InvalidArgument(fmt::format("{}: SentencePiece encode failed: {}", source_, err));
}

#else  // !QSTAR_HAS_SENTENCEPIECE

bool spm_module_available() noexcept { return false; }

std::string spm_unavailable_reason() {
  return "this qstar was built without libsentencepiece (install libsentencepiece-dev and "
         "rebuild with QSTAR_WITH_SENTENCEPIECE AUTO or ON)";
}

std::shared_ptr<const SpmModel> SpmModel::load(std::string_view, std::string_view source) {
  throw IoError(fmt::format("{}: cannot read a SentencePiece model: {}", source, spm_unavailable_reason()));
}
SpmModel::~SpmModel() = default;
int SpmModel::size() const { return 0; }
std::string_view SpmModel::piece(int) const { return {}; }
SpmModel::Type SpmModel::type(int) const { return Type::Normal; }
void SpmModel::encode(std::string_view, std::vector<std::int32_t>&) const {}

#endif

}  // namespace qstar::hf::detail
