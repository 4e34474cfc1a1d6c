#include "chain/format/sigtar.h"

#include <algorithm>
#include <deque>
#include <map>

#include "chain/format/tar.h"
#include "chain/format/tar_writer.h"

namespace dupfs::chain {
namespace {

class SigVisitor : public TarVisitor {
 public:
  explicit SigVisitor(bool keep_signatures = false) : keep_signatures_(keep_signatures) {}

  Status on_entry(const TarHeader& h) override {
    auto name = parse_entry_name(h.name);
    current_ = nullptr;
    if (!name) return {};
    SigEntry e;
    e.kind = name->kind;
    e.index = std::move(name->index);
    e.type = h.type;
    e.mode = h.mode;
    e.uid = h.uid;
    e.gid = h.gid;
    e.uname = h.uname;
    e.gname = h.gname;
    e.mtime = h.mtime;
    e.linkname = h.linkname;
    e.devmajor = h.devmajor;
    e.devminor = h.devminor;
    if (e.kind == EntryKind::kSignature) e.type = TarType::kFile;
    if (keep_signatures_) {
      in_entry = true;
      signed_entries.push_back(SignedSigEntry{std::move(e), {}});
      if (signed_entries.back().entry.kind == EntryKind::kSignature) {
        current_ = &signed_entries.back().signature;
        current_->reserve(h.size);
      }
    } else {
      entries.push_back(std::move(e));
    }
    return {};
  }
  Status on_data(const TarHeader&, std::string_view piece) override {
    if (current_ != nullptr) current_->append(piece);
    return {};
  }
  Status on_entry_end(const TarHeader&) override {
    current_ = nullptr;
    in_entry = false;
    return {};
  }
  std::vector<SigEntry> entries;
  std::deque<SignedSigEntry> signed_entries;
  bool in_entry = false;  // the last of signed_entries still has data to come

 private:
  bool keep_signatures_;
  std::string* current_ = nullptr;
};

}  // namespace

Result<std::vector<SigEntry>> read_sigtar(std::string_view tar) {
  SigVisitor visitor;
  TarParser parser(visitor);
  if (auto st = parser.feed(tar); !st) return std::unexpected(st.error());
  if (auto st = parser.finish(); !st) return std::unexpected(st.error());
  return std::move(visitor.entries);
}

Result<std::vector<SignedSigEntry>> read_sigtar_with_signatures(std::string_view tar) {
  SigVisitor visitor(true);
  TarParser parser(visitor);
  if (auto st = parser.feed(tar); !st) return std::unexpected(st.error());
  if (auto st = parser.finish(); !st) return std::unexpected(st.error());
  return std::vector<SignedSigEntry>(std::make_move_iterator(visitor.signed_entries.begin()),
                                     std::make_move_iterator(visitor.signed_entries.end()));
}

class SignedSigtarParser::Impl {
 public:
  Impl() : visitor(true), parser(visitor) {}
  SigVisitor visitor;
  TarParser parser;
  // Entries whose data is all there (the last one may still be streaming).
  size_t complete() const { return visitor.signed_entries.size() - (visitor.in_entry ? 1 : 0); }
};

SignedSigtarParser::SignedSigtarParser() : impl_(std::make_unique<Impl>()) {}
SignedSigtarParser::~SignedSigtarParser() = default;

Status SignedSigtarParser::feed(std::string_view bytes) { return impl_->parser.feed(bytes); }

Status SignedSigtarParser::finish() { return impl_->parser.finish(); }

bool SignedSigtarParser::has_entry() const { return impl_->complete() > 0; }

SignedSigEntry SignedSigtarParser::take() {
  SignedSigEntry e = std::move(impl_->visitor.signed_entries.front());
  impl_->visitor.signed_entries.pop_front();
  return e;
}

std::vector<SignedSigEntry> merge_signed_signatures(
    std::vector<std::vector<SignedSigEntry>> layers) {
  std::map<Index, SignedSigEntry*> merged;
  for (auto& layer : layers) {
    for (auto& e : layer) {
      if (e.entry.kind == EntryKind::kDeleted) {
        merged.erase(e.entry.index);
      } else {
        merged[e.entry.index] = &e;
      }
    }
  }
  std::vector<SignedSigEntry> out;
  out.reserve(merged.size());
  for (auto& [index, e] : merged) out.push_back(std::move(*e));
  return out;
}

Status SigtarWriter::add(const std::string& name, const SigEntry& e, std::string_view signature) {
  if (finished_) return error(ErrorKind::kInvalidArgument, "signature file already finished");
  TarMember m;
  m.name = name;
  m.type = e.type;
  m.mode = e.kind == EntryKind::kDeleted ? 0 : e.mode;
  m.uid = e.uid;
  m.gid = e.gid;
  m.uname = e.uname;
  m.gname = e.gname;
  m.mtime = e.mtime;
  m.size = signature.size();
  m.linkname = e.linkname;
  m.devmajor = e.devmajor;
  m.devminor = e.devminor;
  std::string block = tar_header(m);
  block.append(signature);
  block.append(tar_padding(signature.size()), '\0');
  offset_ += block.size();
  return sink_(block);
}

Status SigtarWriter::finish() {
  if (finished_) return {};
  finished_ = true;
  std::string end = tar_archive_end(offset_);
  offset_ += end.size();
  return sink_(end);
}

std::vector<SigEntry> merge_signatures(const std::vector<SigLayer>& layers) {
  std::map<Index, const SigEntry*> merged;
  for (const auto& layer : layers) {
    for (const auto& e : *layer) {
      if (e.kind == EntryKind::kDeleted) {
        merged.erase(e.index);
      } else {
        merged[e.index] = &e;
      }
    }
  }
  std::vector<SigEntry> out;
  out.reserve(merged.size());
  for (const auto& [index, e] : merged) out.push_back(*e);
  return out;
}

}  // namespace dupfs::chain
