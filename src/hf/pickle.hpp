// A restricted unpickler for the data.pkl of a torch.save state dict (internal to qstar::hf).
//
// It interprets the pickle opcodes a state dict of tensors needs (protocols 2-5: the
// containers, ints, floats, strings, memo, marks, GLOBAL/STACK_GLOBAL, BINPERSID, REDUCE,
// BUILD) and never executes anything: the only globals it accepts are collections.OrderedDict,
// torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter and the storage types
// torch.FloatStorage, torch.HalfStorage and torch.BFloat16Storage. Any other global is a
// ParseError naming it as soon as it is read, before anything could call it; so are unknown
// opcodes, calls of anything but the two rebuild functions and OrderedDict(), and every limit
// in PickleLimits. Objects live in an arena (indices, no reference counting), so reference
// cycles a hostile pickle builds are harmless and nothing leaks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "qstar/hf/safetensors.hpp"

namespace qstar::hf::detail {

/// Bounds on what one data.pkl may build. All must be positive.
struct PickleLimits {
  std::size_t max_stack = 1'000'000;         ///< values on the stack at once (marks included)
  std::size_t max_memo = 1'000'000;          ///< memo entries (BINPUT indices must be below it too)
  std::size_t max_objects = 8'000'000;       ///< objects built in total
  std::size_t max_string_bytes = 1 << 20;    ///< one string, tensor names included
  std::size_t max_tensors = 1'000'000;       ///< entries of the state dict
  std::size_t max_ndim = 64;                 ///< dimensions of one tensor

  /// InvalidArgument naming the first field that is 0.
  void validate() const;
};

/// One entry of the state dict as the pickle describes it (not yet checked against the zip).
struct PickledTensor {
  std::string name;
  DType dtype = DType::F32;
  std::string storage_key;           ///< the zip entry is <archive>/data/<storage_key>
  std::uint64_t storage_numel = 0;   ///< elements of the storage (of dtype)
  std::int64_t storage_offset = 0;   ///< in elements
  std::vector<std::int64_t> size;
  std::vector<std::int64_t> stride;
};

/// Interprets `pickle` (the bytes of data.pkl) as a state dict: a dict or OrderedDict from
/// string keys to tensors, in the pickle's order. `where` prefixes every error message
/// (e.g. "model.bin: archive/data.pkl"). ParseError for anything else, naming the byte
/// offset and the opcode or global at fault.
std::vector<PickledTensor> read_state_dict_pickle(std::string_view pickle, const std::string& where,
                                                  const PickleLimits& limits = {});

}  // namespace qstar::hf::detail
