// A reader for the central directory of an uncompressed ("stored") zip archive held in
// memory, ZIP64 included: what torch.save writes (internal to qstar::hf).
//
// It locates the end-of-central-directory record (and the ZIP64 one when the classic
// fields overflow), reads every central-directory entry and its local header, and returns
// where each entry's bytes lie. Nothing is decompressed or copied. Every offset and size is
// checked against the buffer with overflow-safe arithmetic; any inconsistency is a
// ParseError naming `path`. Encrypted entries are refused; compressed entries are listed
// (with `stored` false) so the caller can name them in its own error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace qstar::hf::detail {

/// One entry of the archive.
struct ZipEntry {
  std::string name;
  std::uint64_t data_offset = 0;  ///< where the entry's bytes start in the buffer
  std::uint64_t size = 0;         ///< bytes in the archive (compressed size)
  std::uint64_t uncompressed_size = 0;
  bool stored = true;  ///< compression method 0
};

/// The entries of a zip archive, in central-directory order.
struct ZipIndex {
  std::vector<ZipEntry> entries;
  std::map<std::string, std::size_t, std::less<>> by_name;  ///< name -> position in entries

  const ZipEntry* find(std::string_view name) const {
    const auto it = by_name.find(name);
    return it == by_name.end() ? nullptr : &entries[it->second];
  }
};

/// Reads the archive in `data` (`size` bytes). At most `max_entries` entries; duplicate
/// names are an error. ParseError "PATH: zip: ..." for anything malformed.
ZipIndex read_zip_index(const unsigned char* data, std::size_t size, const std::string& path,
                        std::size_t max_entries);

/// Printable, shortened text for error messages: bytes outside printable ASCII (and `\`,
/// `'`) as \xNN, at most 120 bytes shown.
std::string printable(std::string_view s);

/// True when `data` starts like a zip archive (a local file header or an empty archive).
bool looks_like_zip(const unsigned char* data, std::size_t size);

}  // namespace qstar::hf::detail
