// libsentencepiece behind a small C interface: the only qstar file that includes its header.
//
// Why a separate module: Debian's libsentencepiece.so carries its own copy of protobuf-lite
// and exports those google::protobuf symbols. In a process that also has LibTorch (and so
// libprotobuf.so), whichever is loaded first interposes the other's protobuf, and the
// process crashes at start-up. So the main build compiles this file into its own shared
// module, libqstar_sentencepiece.so, which sentencepiece_model.cpp loads with
// dlopen(RTLD_LOCAL | RTLD_DEEPBIND): libsentencepiece then binds to its own protobuf and
// nothing of it enters the global scope. (The fuzz build, which has no LibTorch, links this
// file directly: QSTAR_SPM_DIRECT.)
#include <sentencepiece_processor.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sentencepiece_module.h"

namespace {

void set_error(char* err, std::size_t err_size, const std::string& msg) {
  if (err == nullptr || err_size == 0) return;
  const std::size_t n = std::min(msg.size(), err_size - 1);
  std::memcpy(err, msg.data(), n);
  err[n] = '\0';
}

}  // namespace

struct qstar_spm {
  sentencepiece::SentencePieceProcessor sp;
};

extern "C" QSTAR_SPM_EXPORT qstar_spm* qstar_spm_load(const char* data, std::size_t size, char* err,
                                                      std::size_t err_size) {
  try {
    auto m = std::make_unique<qstar_spm>();
    const auto st = m->sp.LoadFromSerializedProto(std::string_view(data, size));
    if (!st.ok()) {
      set_error(err, err_size, st.ToString());
      return nullptr;
    }
    return m.release();
  } catch (const std::exception& e) {
    set_error(err, err_size, e.what());
    return nullptr;
  }
}

extern "C" QSTAR_SPM_EXPORT void qstar_spm_free(qstar_spm* m) { delete m; }

extern "C" QSTAR_SPM_EXPORT int qstar_spm_size(const qstar_spm* m) { return m->sp.GetPieceSize(); }

extern "C" QSTAR_SPM_EXPORT const char* qstar_spm_piece(const qstar_spm* m, int id, std::size_t* len) {
  const std::string& p = m->sp.IdToPiece(id);
  *len = p.size();
  return p.data();
}

extern "C" QSTAR_SPM_EXPORT int qstar_spm_type(const qstar_spm* m, int id) {
  if (m->sp.IsControl(id)) return QSTAR_SPM_CONTROL;
  if (m->sp.IsUnknown(id)) return QSTAR_SPM_UNKNOWN;
  if (m->sp.IsByte(id)) return QSTAR_SPM_BYTE;
  if (m->sp.IsUnused(id)) return QSTAR_SPM_UNUSED;
  return QSTAR_SPM_NORMAL;
}

extern "C" QSTAR_SPM_EXPORT int qstar_spm_encode(const qstar_spm* m, const char* text, std::size_t size,
                                                 void (*push)(void* ctx, int id), void* ctx, char* err,
                                                 std::size_t err_size) {
  try {
    std::vector<int> ids;
    const auto st = m->sp.Encode(std::string_view(text, size), &ids);
    if (!st.ok()) {
      set_error(err, err_size, st.ToString());
      return 0;
    }
    for (const int id : ids) push(ctx, id);
    return 1;
  } catch (const std::exception& e) {
    set_error(err, err_size, e.what());
    return 0;
  }
}
