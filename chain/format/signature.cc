#include "chain/format/signature.h"

#include <librsync.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace dupfs::chain {
namespace {

constexpr size_t kOutPiece = 64 * 1024;

struct JobDeleter {
  void operator()(rs_job_t* job) const { rs_job_free(job); }
};
using Job = std::unique_ptr<rs_job_t, JobDeleter>;

// Runs `job` over `in` (plus the end of input when `eof`), appending output to `out`. Input the
// job could not take yet is kept in `pending` and offered again first on the next call.
Status drive(rs_job_t* job, std::string& pending, std::string_view in, bool eof, std::string& out,
             const char* what) {
  std::string joined;
  std::string_view input = in;
  if (!pending.empty()) {
    pending.append(in);
    joined.swap(pending);
    input = joined;
  }
  rs_buffers_t b{};
  b.next_in = const_cast<char*>(input.data());
  b.avail_in = input.size();
  b.eof_in = eof ? 1 : 0;
  std::array<char, kOutPiece> piece;
  for (;;) {
    b.next_out = piece.data();
    b.avail_out = piece.size();
    const size_t in_before = b.avail_in;
    rs_result r = rs_job_iter(job, &b);
    const size_t produced = piece.size() - b.avail_out;
    out.append(piece.data(), produced);
    if (r == RS_DONE) {
      if (!eof) return error(ErrorKind::kCorruption, "{}: librsync finished early", what);
      return {};
    }
    if (r != RS_BLOCKED && r != RS_RUNNING) {
      return error(r == RS_MEM_ERROR ? ErrorKind::kIoError : ErrorKind::kCorruption, "{}: {}", what,
                   rs_strerror(r));
    }
    const bool progress = produced > 0 || b.avail_in != in_before;
    if (!progress && b.avail_out > 0) {
      if (eof) return error(ErrorKind::kCorruption, "{}: librsync made no progress", what);
      // Wants more input: keep what it did not take.
      pending.assign(b.next_in, b.avail_in);
      return {};
    }
  }
}

}  // namespace

size_t signature_block_length(uint64_t file_size) {
  if (file_size < 1024000) return 512;
  uint64_t blocks = file_size / (2000 * 512) * 512;
  return static_cast<size_t>(std::min<uint64_t>(blocks, 2048));
}

// ---------------------------------------------------------------------------------------------

class SignatureGenerator::Impl {
 public:
  explicit Impl(size_t block_length)
      : job_(rs_sig_begin(block_length, kSignatureStrongLength, RS_MD4_SIG_MAGIC)) {}
  Job job_;
  std::string pending_;
  std::string out_;
  bool finished_ = false;
};

SignatureGenerator::SignatureGenerator(size_t block_length)
    : impl_(std::make_unique<Impl>(block_length)) {}
SignatureGenerator::~SignatureGenerator() = default;
SignatureGenerator::SignatureGenerator(SignatureGenerator&&) noexcept = default;
SignatureGenerator& SignatureGenerator::operator=(SignatureGenerator&&) noexcept = default;

Status SignatureGenerator::update(std::string_view data) {
  if (!impl_->job_) return error(ErrorKind::kIoError, "rs_sig_begin failed");
  if (data.empty()) return {};
  return drive(impl_->job_.get(), impl_->pending_, data, false, impl_->out_, "signature");
}

Result<std::string> SignatureGenerator::finish() {
  if (!impl_->job_) return error(ErrorKind::kIoError, "rs_sig_begin failed");
  if (impl_->finished_) return error(ErrorKind::kInvalidArgument, "signature finished twice");
  impl_->finished_ = true;
  if (auto st = drive(impl_->job_.get(), impl_->pending_, {}, true, impl_->out_, "signature");
      !st) {
    return std::unexpected(st.error());
  }
  return std::move(impl_->out_);
}

// ---------------------------------------------------------------------------------------------

Result<std::shared_ptr<const LoadedSignature>> LoadedSignature::load(std::string_view signature) {
  rs_signature_t* sig = nullptr;
  Job job(rs_loadsig_begin(&sig));
  if (!job) return error(ErrorKind::kIoError, "rs_loadsig_begin failed");
  std::string pending, out;
  Status st = drive(job.get(), pending, signature, true, out, "signature");
  job.reset();
  if (!st) {
    if (sig != nullptr) rs_free_sumset(sig);
    return error(ErrorKind::kCorruption, "not a librsync signature: {}", st.error().message);
  }
  if (sig == nullptr) return error(ErrorKind::kCorruption, "empty librsync signature");
  if (rs_result r = rs_build_hash_table(sig); r != RS_DONE) {
    rs_free_sumset(sig);
    return error(ErrorKind::kCorruption, "librsync signature: {}", rs_strerror(r));
  }
  return std::shared_ptr<const LoadedSignature>(new LoadedSignature(sig));
}

LoadedSignature::~LoadedSignature() {
  if (sig_ != nullptr) rs_free_sumset(static_cast<rs_signature_t*>(sig_));
}

// ---------------------------------------------------------------------------------------------

class DeltaGenerator::Impl {
 public:
  explicit Impl(std::shared_ptr<const LoadedSignature> sig)
      : sig_(std::move(sig)),
        job_(rs_delta_begin(static_cast<rs_signature_t*>(sig_ ? sig_->handle() : nullptr))) {}
  std::shared_ptr<const LoadedSignature> sig_;
  Job job_;
  std::string pending_;
  bool finished_ = false;
};

DeltaGenerator::DeltaGenerator(std::shared_ptr<const LoadedSignature> signature)
    : impl_(std::make_unique<Impl>(std::move(signature))) {}
DeltaGenerator::~DeltaGenerator() = default;
DeltaGenerator::DeltaGenerator(DeltaGenerator&&) noexcept = default;
DeltaGenerator& DeltaGenerator::operator=(DeltaGenerator&&) noexcept = default;

Status DeltaGenerator::update(std::string_view data, std::string& out) {
  if (!impl_->job_) return error(ErrorKind::kIoError, "rs_delta_begin failed");
  if (data.empty()) return {};
  return drive(impl_->job_.get(), impl_->pending_, data, false, out, "delta");
}

Status DeltaGenerator::finish(std::string& out) {
  if (!impl_->job_) return error(ErrorKind::kIoError, "rs_delta_begin failed");
  if (impl_->finished_) return error(ErrorKind::kInvalidArgument, "delta finished twice");
  impl_->finished_ = true;
  return drive(impl_->job_.get(), impl_->pending_, {}, true, out, "delta");
}

// ---------------------------------------------------------------------------------------------

namespace {

rs_result copy_from_basis(void* opaque, rs_long_t pos, size_t* len, void** buf) {
  auto* basis = static_cast<std::string_view*>(opaque);
  if (pos < 0 || static_cast<uint64_t>(pos) > basis->size()) return RS_INPUT_ENDED;
  size_t n = std::min(*len, basis->size() - static_cast<size_t>(pos));
  std::memcpy(*buf, basis->data() + pos, n);
  *len = n;
  return n == 0 ? RS_INPUT_ENDED : RS_DONE;
}

}  // namespace

Result<std::string> apply_delta(std::string_view basis, std::string_view delta) {
  Job job(rs_patch_begin(&copy_from_basis, &basis));
  if (!job) return error(ErrorKind::kIoError, "rs_patch_begin failed");
  std::string pending, out;
  if (auto st = drive(job.get(), pending, delta, true, out, "patch"); !st) {
    return std::unexpected(st.error());
  }
  return out;
}

}  // namespace dupfs::chain
