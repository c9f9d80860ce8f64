// Stored-zip central-directory reader (src/hf/zip.hpp). Layout: PKWARE's APPNOTE.TXT,
// sections 4.3.6 (local header), 4.3.12 (central directory), 4.3.14-4.3.16 (ZIP64 end
// records and the classic end record) and 4.5.3 (the ZIP64 extended-information field).
#include "hf/zip.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "qstar/error.hpp"

namespace qstar::hf::detail {

namespace {

constexpr std::uint32_t kLocalSig = 0x04034b50;
constexpr std::uint32_t kCentralSig = 0x02014b50;
constexpr std::uint32_t kEndSig = 0x06054b50;
constexpr std::uint32_t kEnd64Sig = 0x06064b50;
constexpr std::uint32_t kLocator64Sig = 0x07064b50;
constexpr std::size_t kEndSize = 22, kLocatorSize = 20, kEnd64Size = 56, kCentralSize = 46, kLocalSize = 30;

class Reader {
 public:
  Reader(const unsigned char* data, std::size_t size, const std::string& path)
      : d_(data), n_(size), path_(path) {}

  [[noreturn]] void fail(std::string_view what) const { throw ParseError(fmt::format("{}: zip: {}", path_, what)); }

  /// `len` bytes at `off` lie inside the buffer (overflow-safe).
  bool fits(std::uint64_t off, std::uint64_t len) const { return off <= n_ && len <= n_ - off; }
  void need(std::uint64_t off, std::uint64_t len, std::string_view what) const {
    if (!fits(off, len))
      fail(fmt::format("{} at offset {} ({} bytes) is outside the file ({} bytes)", what, off, len, n_));
  }
  std::uint64_t le(std::uint64_t off, int bytes) const {
    std::uint64_t v = 0;
    for (int k = bytes - 1; k >= 0; --k) v = (v << 8) | d_[off + static_cast<std::uint64_t>(k)];
    return v;
  }
  std::string_view text(std::uint64_t off, std::uint64_t len) const {
    return {reinterpret_cast<const char*>(d_ + off), static_cast<std::size_t>(len)};
  }
  std::size_t size() const { return n_; }

 private:
  const unsigned char* d_;
  std::size_t n_;
  const std::string& path_;
};

struct CentralDir {
  std::uint64_t entries = 0, size = 0, offset = 0;
};

CentralDir find_central_dir(const Reader& r) {
  if (r.size() < kEndSize) r.fail(fmt::format("file is {} bytes, too short for a zip archive", r.size()));
  // The end record is the last thing in the file, followed only by its comment (< 64 KiB).
  std::uint64_t end = r.size() - kEndSize;
  const std::uint64_t lowest = end > 0xFFFF ? end - 0xFFFF : 0;
  for (;; --end) {
    if (r.le(end, 4) == kEndSig && end + kEndSize + r.le(end + 20, 2) == r.size()) break;
    if (end == lowest) r.fail("no end-of-central-directory record (not a zip archive, or truncated)");
  }
  CentralDir cd{r.le(end + 10, 2), r.le(end + 12, 4), r.le(end + 16, 4)};
  if (r.le(end + 4, 2) != 0 || r.le(end + 6, 2) != 0 || r.le(end + 8, 2) != cd.entries)
    r.fail("multi-disk archives are not supported");
  if (end >= kLocatorSize && r.le(end - kLocatorSize, 4) == kLocator64Sig) {
    const std::uint64_t loc = end - kLocatorSize;
    if (r.le(loc + 4, 4) != 0 || r.le(loc + 16, 4) > 1) r.fail("multi-disk ZIP64 archives are not supported");
    const std::uint64_t e64 = r.le(loc + 8, 8);
    if (e64 > loc || loc - e64 < kEnd64Size)
      r.fail(fmt::format("the ZIP64 end record offset {} is not before its locator (at {})", e64, loc));
    if (r.le(e64, 4) != kEnd64Sig) r.fail(fmt::format("no ZIP64 end-of-central-directory record at offset {}", e64));
    if (r.le(e64 + 16, 4) != 0 || r.le(e64 + 20, 4) != 0 || r.le(e64 + 24, 8) != r.le(e64 + 32, 8))
      r.fail("multi-disk ZIP64 archives are not supported");
    cd = {r.le(e64 + 32, 8), r.le(e64 + 40, 8), r.le(e64 + 48, 8)};
  } else if (cd.entries == 0xFFFF || cd.size == 0xFFFFFFFF || cd.offset == 0xFFFFFFFF) {
    r.fail("the end record asks for ZIP64 values but there is no ZIP64 locator");
  }
  r.need(cd.offset, cd.size, "the central directory");
  return cd;
}

/// Applies the ZIP64 extended-information extra field (header id 1) of a central entry.
void apply_zip64_extra(const Reader& r, std::uint64_t extra, std::uint64_t extra_len, const std::string& name,
                       std::uint64_t& usize, std::uint64_t& csize, std::uint64_t& offset) {
  std::uint64_t at = extra;
  const std::uint64_t stop = extra + extra_len;
  bool found = false;
  while (stop - at >= 4) {
    const std::uint64_t id = r.le(at, 2), len = r.le(at + 2, 2);
    if (len > stop - at - 4) r.fail(fmt::format("entry '{}': an extra field overruns the extra data", name));
    if (id == 1 && !found) {
      found = true;
      std::uint64_t p = at + 4;
      const std::uint64_t q = p + len;
      for (std::uint64_t* v : {&usize, &csize, &offset}) {
        if (*v != 0xFFFFFFFF) continue;
        if (q - p < 8) r.fail(fmt::format("entry '{}': the ZIP64 extra field is too short", name));
        *v = r.le(p, 8);
        p += 8;
      }
    }
    at += 4 + len;
  }
  if (!found && (usize == 0xFFFFFFFF || csize == 0xFFFFFFFF || offset == 0xFFFFFFFF))
    r.fail(fmt::format("entry '{}': sizes or offset ask for ZIP64 values but there is no ZIP64 extra field", name));
}

}  // namespace

std::string printable(std::string_view s) {
  std::string out;
  for (const char c : s.substr(0, 120)) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7F && c != '\\' && c != '\'')
      out.push_back(c);
    else
      out += fmt::format("\\x{:02X}", u);
  }
  if (s.size() > 120) out += "...";
  return out;
}

bool looks_like_zip(const unsigned char* data, std::size_t size) {
  if (size < 4 || data[0] != 'P' || data[1] != 'K') return false;
  return (data[2] == 3 && data[3] == 4) || (data[2] == 5 && data[3] == 6);
}

ZipIndex read_zip_index(const unsigned char* data, std::size_t size, const std::string& path,
                        std::size_t max_entries) {
  const Reader r(data, size, path);
  const CentralDir cd = find_central_dir(r);
  if (cd.entries > max_entries) r.fail(fmt::format("{} entries (limit {})", cd.entries, max_entries));
  if (cd.entries > cd.size / kCentralSize)
    r.fail(fmt::format("{} entries cannot fit a central directory of {} bytes", cd.entries, cd.size));
  ZipIndex idx;
  idx.entries.reserve(static_cast<std::size_t>(cd.entries));
  std::uint64_t at = cd.offset;
  const std::uint64_t cd_end = cd.offset + cd.size;
  for (std::uint64_t k = 0; k < cd.entries; ++k) {
    if (cd_end - at < kCentralSize || r.le(at, 4) != kCentralSig)
      r.fail(fmt::format("central directory entry {} at offset {} is missing or malformed", k, at));
    const std::uint64_t flags = r.le(at + 8, 2), method = r.le(at + 10, 2);
    std::uint64_t csize = r.le(at + 20, 4), usize = r.le(at + 24, 4), offset = r.le(at + 42, 4);
    const std::uint64_t name_len = r.le(at + 28, 2), extra_len = r.le(at + 30, 2), comment_len = r.le(at + 32, 2);
    const std::uint64_t total = kCentralSize + name_len + extra_len + comment_len;
    if (total > cd_end - at) r.fail(fmt::format("central directory entry {} overruns the directory", k));
    ZipEntry e;
    e.name = std::string(r.text(at + kCentralSize, name_len));
    const std::string en = printable(e.name);
    apply_zip64_extra(r, at + kCentralSize + name_len, extra_len, en, usize, csize, offset);
    if ((flags & 1) != 0) r.fail(fmt::format("entry '{}' is encrypted", en));
    e.stored = method == 0;
    if (e.stored && csize != usize)
      r.fail(fmt::format("stored entry '{}' has compressed size {} but uncompressed size {}", en, csize, usize));
    // The local header: its own name (which must match) and extra field come before the data.
    r.need(offset, kLocalSize, fmt::format("the local header of '{}'", en));
    if (r.le(offset, 4) != kLocalSig) r.fail(fmt::format("no local header for '{}' at offset {}", en, offset));
    const std::uint64_t lname = r.le(offset + 26, 2), lextra = r.le(offset + 28, 2);
    r.need(offset + kLocalSize, lname + lextra, fmt::format("the local header of '{}'", en));
    if (r.text(offset + kLocalSize, lname) != e.name)
      r.fail(fmt::format("entry '{}': the local header names a different file", en));
    e.data_offset = offset + kLocalSize + lname + lextra;
    e.size = csize;
    e.uncompressed_size = usize;
    r.need(e.data_offset, e.size, fmt::format("the data of '{}'", en));
    if (!idx.by_name.emplace(e.name, idx.entries.size()).second)
      r.fail(fmt::format("entry '{}' appears twice", en));
    idx.entries.push_back(std::move(e));
    at += total;
  }
  return idx;
}

}  // namespace qstar::hf::detail
