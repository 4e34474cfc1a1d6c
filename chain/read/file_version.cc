#include "chain/read/file_version.h"

#include <algorithm>
#include <cstring>

namespace dupfs::chain {

void Stream::append(uint32_t volume, uint64_t offset, uint64_t length) {
  pieces.push_back(Piece{volume, offset, length, size});
  size += length;
}

Result<size_t> Stream::read(VolumeStore& store, uint64_t offset, char* out, size_t length,
                            bool wait) const {
  if (offset >= size) return 0;
  length = std::min<uint64_t>(length, size - offset);
  auto it = std::upper_bound(pieces.begin(), pieces.end(), offset,
                             [](uint64_t off, const Piece& p) { return off < p.start; });
  if (it != pieces.begin()) --it;
  size_t done = 0;
  for (; it != pieces.end() && done < length; ++it) {
    uint64_t pos = offset + done;
    if (pos < it->start || pos >= it->start + it->length) continue;
    uint64_t within = pos - it->start;
    size_t n = std::min<uint64_t>(length - done, it->length - within);
    auto got = store.read(it->volume, it->offset + within, out + done, n, wait);
    if (!got) return std::unexpected(got.error());
    if (*got != n) {
      return error(ErrorKind::kCorruption, "data ends early in {}", store.volume_name(it->volume));
    }
    done += n;
  }
  return done;
}

std::shared_ptr<const FileVersion> FileVersion::whole(Stream data) {
  auto v = std::make_shared<FileVersion>();
  v->size_ = data.size;
  v->data_ = std::move(data);
  return v;
}

Result<std::shared_ptr<const FileVersion>> FileVersion::patched(
    VolumeStore& store, Stream delta, std::shared_ptr<const FileVersion> basis) {
  auto reader = [&](uint64_t off, char* buf, size_t len) {
    return delta.read(store, off, buf, len);
  };
  auto commands = parse_delta(reader, delta.size, basis->size());
  if (!commands) return std::unexpected(commands.error());
  auto v = std::make_shared<FileVersion>();
  v->commands_ = std::move(*commands);
  v->size_ = v->commands_.empty() ? 0 : v->commands_.back().out + v->commands_.back().length;
  v->data_ = std::move(delta);
  v->depth_ = basis->depth_ + 1;
  v->basis_ = std::move(basis);
  return std::shared_ptr<const FileVersion>(std::move(v));
}

Result<size_t> FileVersion::read(VolumeStore& store, uint64_t offset, char* out, size_t length,
                                 bool wait) const {
  if (!basis_) return data_.read(store, offset, out, length, wait);
  if (offset >= size_) return 0;
  length = std::min<uint64_t>(length, size_ - offset);
  auto it = std::upper_bound(commands_.begin(), commands_.end(), offset,
                             [](uint64_t off, const DeltaCommand& c) { return off < c.out; });
  --it;  // commands start at 0, so the first one is never past `offset`
  size_t done = 0;
  for (; it != commands_.end() && done < length; ++it) {
    uint64_t within = offset + done - it->out;
    size_t n = std::min<uint64_t>(length - done, it->length - within);
    auto got = it->literal ? data_.read(store, it->src + within, out + done, n, wait)
                           : basis_->read(store, it->src + within, out + done, n, wait);
    if (!got) return std::unexpected(got.error());
    if (*got != n) return error(ErrorKind::kCorruption, "patched data ends early");
    done += n;
  }
  return done;
}

}  // namespace dupfs::chain
