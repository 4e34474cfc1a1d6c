// librsync signatures and deltas as duplicity makes them (docs/format.md §3.6, §4.2): MD4
// signatures (RS_MD4_SIG_MAGIC) with 8-byte strong sums and duplicity's block lengths, and deltas
// of new file data against a stored signature. Everything streams through rs_job_t: memory does not
// depend on the file size (a loaded signature is held whole, as librsync needs it).
// Not thread-safe; one object per file. Objects in different threads run in parallel.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "backends/base/error.h"

namespace dupfs::chain {

inline constexpr size_t kSignatureStrongLength = 8;

// duplicity's diffdir.get_block_size: 512 under 1 024 000 bytes, else
// (size / 1 024 000) * 512, at most 2048 (--max-blocksize's default).
size_t signature_block_length(uint64_t file_size);

// The signature of a file read front to back.
class SignatureGenerator {
 public:
  explicit SignatureGenerator(size_t block_length);
  ~SignatureGenerator();
  SignatureGenerator(SignatureGenerator&&) noexcept;
  SignatureGenerator& operator=(SignatureGenerator&&) noexcept;

  // The next bytes of the file.
  Status update(std::string_view data);
  // The whole signature (12-byte header, then 12 bytes per block). Once only.
  Result<std::string> finish();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// A signature loaded and indexed for delta generation. Immutable once made; may be shared by
// several DeltaGenerators in one thread at a time.
class LoadedSignature {
 public:
  // kCorruption when `signature` is not a librsync signature.
  static Result<std::shared_ptr<const LoadedSignature>> load(std::string_view signature);
  ~LoadedSignature();
  LoadedSignature(const LoadedSignature&) = delete;
  LoadedSignature& operator=(const LoadedSignature&) = delete;

  void* handle() const { return sig_; }  // rs_signature_t*

 private:
  explicit LoadedSignature(void* sig) : sig_(sig) {}
  void* sig_;
};

// A librsync delta (magic 72 73 02 36, then COPY/LITERAL commands) turning the file the
// signature was made from into the data fed in. Output comes out through `out`, appended.
class DeltaGenerator {
 public:
  explicit DeltaGenerator(std::shared_ptr<const LoadedSignature> signature);
  ~DeltaGenerator();
  DeltaGenerator(DeltaGenerator&&) noexcept;
  DeltaGenerator& operator=(DeltaGenerator&&) noexcept;

  // The next bytes of the new file; delta bytes produced so far are appended to `out`.
  Status update(std::string_view data, std::string& out);
  // The rest of the delta. Once only.
  Status finish(std::string& out);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// librsync's patch of `basis` with `delta` (for tests and checks): the new file.
Result<std::string> apply_delta(std::string_view basis, std::string_view delta);

}  // namespace dupfs::chain
