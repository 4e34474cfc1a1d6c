// Signature files (docs/format.md §4): what a sigtar says about each path of a set (its metadata;
// never sizes or data). Merging a chain's full and new signatures gives the tree at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backends/base/error.h"
#include "chain/format/difftar.h"

namespace dupfs::chain {

struct SigEntry {
  EntryKind kind;  // kSignature (regular file), kSnapshot (anything else), kDeleted
  Index index;
  TarType type = TarType::kFile;
  uint32_t mode = 0;
  int64_t uid = 0;
  int64_t gid = 0;
  std::string uname;  // owner names; restore maps them through the local passwd/group
  std::string gname;
  int64_t mtime = 0;
  std::string linkname;
  uint32_t devmajor = 0;
  uint32_t devminor = 0;
};

// The entries of a decoded sigtar, in stream order. kCorruption for a damaged tar.
Result<std::vector<SigEntry>> read_sigtar(std::string_view tar);

// An entry with the librsync signature of a regular file (kSignature entries; empty otherwise),
// what an incremental backup computes its deltas against.
struct SignedSigEntry {
  SigEntry entry;
  std::string signature;
};

// Like read_sigtar, with the signature bytes of every kSignature entry.
Result<std::vector<SignedSigEntry>> read_sigtar_with_signatures(std::string_view tar);

// A signature file parsed as it is fed (in pieces of any size): entries, with their signature
// bytes, can be taken as soon as they are complete, so a signature file never has to be held
// whole. kCorruption for a damaged tar, from feed() or finish().
class SignedSigtarParser {
 public:
  SignedSigtarParser();
  ~SignedSigtarParser();
  SignedSigtarParser(const SignedSigtarParser&) = delete;
  SignedSigtarParser& operator=(const SignedSigtarParser&) = delete;

  Status feed(std::string_view bytes);
  Status finish();
  bool has_entry() const;
  SignedSigEntry take();  // the oldest complete entry; only when has_entry()

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// merge_signatures for entries with signatures: newest layer wins per index, deleted entries
// remove the path; sorted by index. Moves out of the layers.
std::vector<SignedSigEntry> merge_signed_signatures(
    std::vector<std::vector<SignedSigEntry>> layers);

// Writes a signature file (docs/format.md §4.1) as Python's tarfile does: each member's header,
// data and padding, then at finish() two zero blocks and zeros to the 10240-byte record boundary.
// The tar bytes go to `sink` as they are made. Not thread-safe.
class SigtarWriter {
 public:
  explicit SigtarWriter(std::function<Status(std::string_view)> sink) : sink_(std::move(sink)) {}

  // One member: `name` as sigtar_member_name() makes it; `signature` only for kSignature
  // (the header's size is its length). `e.index` and `e.kind` are ignored.
  Status add(const std::string& name, const SigEntry& e, std::string_view signature = {});
  Status finish();
  uint64_t offset() const { return offset_; }

 private:
  std::function<Status(std::string_view)> sink_;
  uint64_t offset_ = 0;
  bool finished_ = false;
};

// The tree after applying `layers` in order (full signatures first): for each index the entry
// from the newest layer wins and deleted entries remove the path. Sorted by index.
using SigLayer = std::shared_ptr<const std::vector<SigEntry>>;
std::vector<SigEntry> merge_signatures(const std::vector<SigLayer>& layers);

}  // namespace dupfs::chain
