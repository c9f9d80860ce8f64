/* The C interface of libqstar_sentencepiece (sentencepiece_module.cpp): what
 * sentencepiece_model.cpp looks up with dlsym (or calls directly with QSTAR_SPM_DIRECT). */
#pragma once

#include <cstddef>

#if defined(QSTAR_SPM_DIRECT)
#define QSTAR_SPM_EXPORT
#else
#define QSTAR_SPM_EXPORT __attribute__((visibility("default")))
#endif

enum { QSTAR_SPM_NORMAL = 1, QSTAR_SPM_CONTROL, QSTAR_SPM_UNKNOWN, QSTAR_SPM_BYTE, QSTAR_SPM_UNUSED };

extern "C" {
struct qstar_spm;
/// A model from serialized ModelProto bytes; null with SentencePiece's message in err.
typedef qstar_spm* (*qstar_spm_load_fn)(const char* data, std::size_t size, char* err, std::size_t err_size);
typedef void (*qstar_spm_free_fn)(qstar_spm* m);
typedef int (*qstar_spm_size_fn)(const qstar_spm* m);
/// The piece of `id` (valid while the model lives).
typedef const char* (*qstar_spm_piece_fn)(const qstar_spm* m, int id, std::size_t* len);
typedef int (*qstar_spm_type_fn)(const qstar_spm* m, int id);
/// Calls push(ctx, id) for each id of `text`; 0 with the message in err on failure.
typedef int (*qstar_spm_encode_fn)(const qstar_spm* m, const char* text, std::size_t size,
                                   void (*push)(void* ctx, int id), void* ctx, char* err,
                                   std::size_t err_size);

#if defined(QSTAR_SPM_DIRECT)
qstar_spm* qstar_spm_load(const char* data, std::size_t size, char* err, std::size_t err_size);
void qstar_spm_free(qstar_spm* m);
int qstar_spm_size(const qstar_spm* m);
const char* qstar_spm_piece(const qstar_spm* m, int id, std::size_t* len);
int qstar_spm_type(const qstar_spm* m, int id);
int qstar_spm_encode(const qstar_spm* m, const char* text, std::size_t size, void (*push)(void* ctx, int id),
                     void* ctx, char* err, std::size_t err_size);
#endif
}
