#include "chain/codec/encode.h"

#include <fcntl.h>
#include <gpgme.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>

#include "chain/codec/gpgme.h"
#include "chain/codec/openpgp_encrypt.h"

namespace dupfs::chain {
namespace {

constexpr size_t kOutPiece = 256 * 1024;
// Passphrase requests answered within one operation (PassphraseRequests::limit).
constexpr int kMaxPassphraseRequests = 4;

// ---------------------------------------------------------------------------------------------
// Plain

class PlainEncoder : public Encoder {
 public:
  explicit PlainEncoder(ByteSink sink) : sink_(std::move(sink)) {}
  Status write(std::string_view plain) override {
    if (plain.empty()) return {};
    bytes_out_ += plain.size();
    return sink_(plain);
  }
  Status finish() override { return {}; }
  uint64_t bytes_out() const override { return bytes_out_; }

 private:
  ByteSink sink_;
  uint64_t bytes_out_ = 0;
};

// ---------------------------------------------------------------------------------------------
// gzip (Deflater: one member as Python's GzipFile writes it) and passphrase-only OpenPGP
// (SymmetricEncryptor: what gpg --symmetric 2.2 writes), both in process.

class GzipEncoder : public Encoder {
 public:
  GzipEncoder(ByteSink sink, DeflateLevel level)
      : deflater_(Deflater::Format::kGzip, level, std::move(sink)) {}
  Status write(std::string_view plain) override { return deflater_.write(plain); }
  Status finish() override { return deflater_.finish(); }
  uint64_t bytes_out() const override { return deflater_.bytes_out(); }

 private:
  Deflater deflater_;
};

class SymmetricPgpEncoder : public Encoder {
 public:
  SymmetricPgpEncoder(std::string_view passphrase, ByteSink sink, DeflateLevel level)
      : encryptor_(passphrase, std::move(sink), options(level)) {}
  Status write(std::string_view plain) override { return encryptor_.write(plain); }
  Status finish() override { return encryptor_.finish(); }
  uint64_t bytes_out() const override { return encryptor_.bytes_out(); }

 private:
  static SymmetricEncryptOptions options(DeflateLevel level) {
    SymmetricEncryptOptions o;
    o.compression = level;
    return o;
  }
  SymmetricEncryptor encryptor_;
};

// ---------------------------------------------------------------------------------------------
// OpenPGP through GPGME. gpg runs in a thread of its own (gpgme_op_encrypt blocks): plaintext
// goes to it through a pipe written by write(), its output comes back through a second pipe
// read by a reader thread that calls the sink.

// A configured context plus the keys it needs.
struct GpgSetup {
  GpgmeContext ctx;
  std::vector<GpgmeKey> recipients;
  std::unique_ptr<PassphraseRequests> hook;  // where the context's passphrase callback points
};

Result<GpgSetup> gpg_setup(const EncodeOptions& options, const std::string& name) {
  const auto fail = [&](const char* what, gpgme_error_t err) {
    return error(ErrorKind::kIoError, "cannot encrypt {}: {}: {}", name, what, gpgme_text(err));
  };
  GpgSetup s;
  s.hook = std::make_unique<PassphraseRequests>(
      PassphraseRequests{&options.passphrase, kMaxPassphraseRequests});
  auto made = new_gpgme_context(options.gnupg_home, s.hook.get());
  if (!made) return fail(made.error().step, made.error().err);
  s.ctx = std::move(*made);
  gpgme_ctx_t raw = s.ctx.get();
  gpgme_set_armor(raw, 0);
  for (const auto& id : options.recipients) {
    gpgme_key_t key = nullptr;
    if (gpgme_error_t err = gpgme_get_key(raw, id.c_str(), &key, 0); err || key == nullptr) {
      return error(ErrorKind::kInvalidArgument, "encryption key {} not found: {}", id,
                   err ? gpgme_text(err) : std::string("no such key"));
    }
    s.recipients.emplace_back(key);
  }
  if (!options.sign_key.empty()) {
    gpgme_key_t key = nullptr;
    if (gpgme_error_t err = gpgme_get_key(raw, options.sign_key.c_str(), &key, 1);
        err || key == nullptr) {
      return error(ErrorKind::kInvalidArgument, "secret signing key {} not found: {}",
                   options.sign_key, err ? gpgme_text(err) : std::string("no such key"));
    }
    GpgmeKey owned(key);
    if (gpgme_error_t err = gpgme_signers_add(raw, key)) return fail("signing key", err);
  }
  return s;
}

class GpgEncoder : public Encoder {
 public:
  static Result<std::unique_ptr<Encoder>> make(const EncodeOptions& options, std::string name,
                                               ByteSink sink) {
    if (options.recipients.empty() && !options.passphrase) {
      return error(ErrorKind::kAuth, "cannot encrypt {}: no passphrase given", name);
    }
    auto setup = gpg_setup(options, name);
    if (!setup) return std::unexpected(setup.error());
    auto enc = std::unique_ptr<GpgEncoder>(new GpgEncoder(std::move(sink), std::move(name)));
    enc->options_ = options;
    enc->setup_ = std::move(*setup);
    // The hook points at options_ of this object from now on.
    enc->setup_.hook->passphrase = &enc->options_.passphrase;
    if (auto st = enc->start(); !st) return std::unexpected(st.error());
    return std::unique_ptr<Encoder>(std::move(enc));
  }

  ~GpgEncoder() override {
    if (started_ && !finished_) {
      close_fd(in_w_);
      if (op_.joinable()) op_.join();
      close_fd(out_w_);
      if (reader_.joinable()) reader_.join();
    }
    close_fd(in_r_);
    close_fd(in_w_);
    close_fd(out_r_);
    close_fd(out_w_);
  }

  Status write(std::string_view plain) override {
    if (sink_error_flag_.load()) return finish_error();
    while (!plain.empty()) {
      ssize_t n = ::write(in_w_, plain.data(), plain.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        // gpg went away (EPIPE): the reason comes from the operation's result.
        return finish_error();
      }
      plain.remove_prefix(static_cast<size_t>(n));
    }
    return {};
  }

  Status finish() override {
    if (finished_) return error(ErrorKind::kInvalidArgument, "{} finished twice", name_);
    finished_ = true;
    close_fd(in_w_);
    op_.join();
    close_fd(out_w_);
    reader_.join();
    if (sink_error_) return std::unexpected(*sink_error_);
    if (op_error_ != 0) return std::unexpected(op_failure());
    return {};
  }

  uint64_t bytes_out() const override { return bytes_out_.load(std::memory_order_relaxed); }

 private:
  GpgEncoder(ByteSink sink, std::string name) : sink_(std::move(sink)), name_(std::move(name)) {}

  static void close_fd(int& fd) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }

  Status start() {
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) {
      return error(ErrorKind::kIoError, "cannot encrypt {}: pipe: {}", name_, std::strerror(errno));
    }
    in_r_ = in[0];
    in_w_ = in[1];
    out_r_ = out[0];
    out_w_ = out[1];
    ::fcntl(out_w_, F_SETPIPE_SZ, 1 << 20);
    gpgme_data_t raw = nullptr;
    if (gpgme_error_t err = gpgme_data_new_from_fd(&raw, in_r_)) {
      return error(ErrorKind::kIoError, "cannot encrypt {}: input: {}", name_, gpgme_text(err));
    }
    plain_.reset(raw);
    if (gpgme_error_t err = gpgme_data_new_from_fd(&raw, out_w_)) {
      return error(ErrorKind::kIoError, "cannot encrypt {}: output: {}", name_, gpgme_text(err));
    }
    cipher_.reset(raw);
    started_ = true;
    reader_ = std::thread([this] { read_output(); });
    op_ = std::thread([this] { run_op(); });
    return {};
  }

  void run_op() {
    std::vector<gpgme_key_t> keys;
    for (auto& k : setup_.recipients) keys.push_back(k.get());
    keys.push_back(nullptr);
    gpgme_key_t* recp = setup_.recipients.empty() ? nullptr : keys.data();
    auto flags = static_cast<gpgme_encrypt_flags_t>(
        setup_.recipients.empty() ? 0 : GPGME_ENCRYPT_ALWAYS_TRUST);
    gpgme_ctx_t ctx = setup_.ctx.get();
    if (options_.sign_key.empty()) {
      op_error_ = gpgme_op_encrypt(ctx, recp, flags, plain_.get(), cipher_.get());
    } else {
      op_error_ = gpgme_op_encrypt_sign(ctx, recp, flags, plain_.get(), cipher_.get());
    }
    if (op_error_ == 0) {
      if (gpgme_encrypt_result_t r = gpgme_op_encrypt_result(ctx);
          r != nullptr && r->invalid_recipients != nullptr) {
        invalid_recipient_ = r->invalid_recipients->fpr ? r->invalid_recipients->fpr : "?";
        op_error_ = gpgme_error(GPG_ERR_UNUSABLE_PUBKEY);
      }
    }
    // A reader of our pipe that stopped early must not leave the writer blocked.
    close_fd(in_r_);
  }

  void read_output() {
    std::string buf(kOutPiece, '\0');
    for (;;) {
      ssize_t n = ::read(out_r_, buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      bytes_out_.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
      if (!sink_error_) {
        auto st = sink_(std::string_view(buf.data(), static_cast<size_t>(n)));
        if (!st) {
          sink_error_ = st.error();
          sink_error_flag_.store(true);
          break;
        }
      }
    }
    close_fd(out_r_);  // gpg, still writing, gets EPIPE
  }

  Status finish_error() {
    if (!finished_) {
      Status st = finish();
      if (!st) return st;
    }
    return error(ErrorKind::kIoError, "cannot encrypt {}: gpg stopped reading", name_);
  }

  Error op_failure() const {
    gpgme_err_code_t code = gpgme_err_code(op_error_);
    if (setup_.hook->missing) {
      return Error{ErrorKind::kAuth, "cannot encrypt " + name_ + ": no passphrase given"};
    }
    if (code == GPG_ERR_BAD_PASSPHRASE || setup_.hook->bad || setup_.hook->too_many) {
      return Error{ErrorKind::kAuth, "cannot sign " + name_ + ": bad passphrase"};
    }
    if (code == GPG_ERR_UNUSABLE_PUBKEY) {
      return Error{ErrorKind::kInvalidArgument,
                   "cannot encrypt " + name_ + ": unusable key " + invalid_recipient_};
    }
    return Error{ErrorKind::kIoError, "cannot encrypt " + name_ + ": " + gpgme_text(op_error_)};
  }

  ByteSink sink_;
  std::string name_;
  EncodeOptions options_;
  GpgSetup setup_;
  GpgmeData plain_, cipher_;
  int in_r_ = -1, in_w_ = -1, out_r_ = -1, out_w_ = -1;
  std::thread op_, reader_;
  bool started_ = false;
  bool finished_ = false;
  gpgme_error_t op_error_ = 0;
  std::string invalid_recipient_;
  std::optional<Error> sink_error_;  // written by the reader thread, read after join
  std::atomic<bool> sink_error_flag_{false};
  std::atomic<uint64_t> bytes_out_{0};
};

}  // namespace

std::string_view suffix_for(Codec codec) {
  switch (codec) {
    case Codec::kGpg:
      return ".gpg";
    case Codec::kGzip:
      return ".gz";
    case Codec::kPlain:
      return "";
  }
  return "";
}

Result<std::unique_ptr<Encoder>> make_encoder(const EncodeOptions& options, std::string name,
                                              ByteSink sink) {
  switch (options.codec) {
    case Codec::kPlain:
      return std::unique_ptr<Encoder>(std::make_unique<PlainEncoder>(std::move(sink)));
    case Codec::kGzip:
      return std::unique_ptr<Encoder>(std::make_unique<GzipEncoder>(
          std::move(sink), options.compression.value_or(DeflateLevel{DeflateEngine::kZlib, 4})));
    case Codec::kGpg:
      if (options.recipients.empty() && options.sign_key.empty() && options.in_process) {
        if (!options.passphrase) {
          return error(ErrorKind::kAuth, "cannot encrypt {}: no passphrase given", name);
        }
        return std::unique_ptr<Encoder>(std::make_unique<SymmetricPgpEncoder>(
            *options.passphrase, std::move(sink),
            options.compression.value_or(DeflateLevel{DeflateEngine::kIsal, 3})));
      }
      return GpgEncoder::make(options, std::move(name), std::move(sink));
  }
  return error(ErrorKind::kInvalidArgument, "unknown codec");
}

Result<std::string> encode_to_string(const EncodeOptions& options, const std::string& name,
                                     std::string_view plain) {
  std::string out;
  auto enc = make_encoder(options, name, [&out](std::string_view b) -> Status {
    out.append(b);
    return {};
  });
  if (!enc) return std::unexpected(enc.error());
  if (auto st = (*enc)->write(plain); !st) return std::unexpected(st.error());
  if (auto st = (*enc)->finish(); !st) return std::unexpected(st.error());
  return out;
}

Status check_encryption_keys(const EncodeOptions& options) {
  if (options.codec != Codec::kGpg) return {};
  auto setup = gpg_setup(options, "backup");
  if (!setup) return std::unexpected(setup.error());
  return {};
}

}  // namespace dupfs::chain
