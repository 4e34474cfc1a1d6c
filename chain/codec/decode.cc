// Streaming decoders for stored objects. Every codec reads the object in kReadPieceSize pieces
// through Backend::read_range and hands decoded bytes to the sink in bounded pieces, so memory
// use does not depend on the object's size.
//
// GnuPG: with a passphrase, messages encrypted with a passphrase only (what duplicity writes with
// symmetric encryption) are decrypted in process by SymmetricDecryptor (chain/codec/openpgp.h);
// whatever it reports as unsupported, before any output, is decrypted again from the start by
// GPGME, as is everything when there is no passphrase.
//
// GPGME: one context per call (calls from many threads run in parallel, each with its own gpg
// process), loopback pinentry with a passphrase callback, and the "no-symkey-cache" flag so
// that the passphrase the user gave is the one checked, never one gpg-agent remembered from an
// earlier decryption.
#include "chain/codec/decode.h"

#include <fcntl.h>
#include <gpgme.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <utility>

#include "chain/codec/gpgme.h"
#include "chain/codec/inflate.h"
#include "chain/codec/openpgp.h"
#include "chain/codec/seek_builder.h"

namespace dupfs::chain {
namespace {

// How much is asked of storage at a time.
constexpr size_t kReadPieceSize = size_t{1} << 20;
// Upper bound of one piece handed to a sink by the gzip and gpg decoders.
constexpr size_t kSinkPieceSize = size_t{256} << 10;
// A passphrase callback asked more often than this within one decryption is refused, so a
// message encrypted to several keys cannot make us loop.
constexpr int kMaxPassphraseRequests = 8;

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Collects small writes into pieces of up to kSinkPieceSize before passing them on. Decrypted
// bytes pass through it, so it wipes its buffer when done.
class SinkBuffer {
 public:
  explicit SinkBuffer(const ByteSink& sink) : sink_(sink) { buffer_.reserve(kSinkPieceSize); }
  ~SinkBuffer() { OPENSSL_cleanse(buffer_.data(), buffer_.capacity()); }
  SinkBuffer(const SinkBuffer&) = delete;
  SinkBuffer& operator=(const SinkBuffer&) = delete;

  Status append(std::string_view data) {
    while (!data.empty()) {
      size_t n = std::min(data.size(), kSinkPieceSize - buffer_.size());
      buffer_.append(data.substr(0, n));
      data.remove_prefix(n);
      if (buffer_.size() == kSinkPieceSize) {
        if (auto s = flush(); !s) return s;
      }
    }
    return {};
  }

  Status flush() {
    if (buffer_.empty()) return {};
    Status s = sink_(buffer_);
    // clear() keeps the capacity, so the bytes stay until overwritten or wiped at the end.
    buffer_.clear();
    return s;
  }

 private:
  const ByteSink& sink_;
  std::string buffer_;
};

// ---------------------------------------------------------------------------------------------
// Plain

Status decode_plain(const Backend& backend, const std::string& name, const ByteSink& sink,
                    SeekBuilder* seek) {
  if (seek != nullptr) seek->set_compression(0, 0);
  for (uint64_t offset = 0;;) {
    auto piece = backend.read_range(name, offset, kReadPieceSize);
    if (!piece) return std::unexpected(std::move(piece.error()));
    if (!piece->empty()) {
      if (seek != nullptr) seek->output(*piece);
      if (auto s = sink(*piece); !s) return s;
    }
    // A short piece means the end of the object (Backend::read_range contract).
    if (piece->size() < kReadPieceSize) return {};
    offset += piece->size();
  }
}

// ---------------------------------------------------------------------------------------------
// gzip

Status decode_gzip(const Backend& backend, const std::string& name, const ByteSink& sink,
                   SeekBuilder* seek) {
  // Seek points are bit offsets in the stored object: Z is the whole file.
  if (seek != nullptr) seek->set_compression(1, 0);
  Inflater inflater(Inflater::Format::kGzip, seek);
  uint64_t offset = 0;
  bool in_member = false;     // inside a gzip member (header seen or expected)
  bool member_ended = false;  // at least one member was complete
  for (;;) {
    auto piece = backend.read_range(name, offset, kReadPieceSize);
    if (!piece) return std::unexpected(std::move(piece.error()));
    offset += piece->size();
    const bool input_done = piece->size() < kReadPieceSize;
    std::string_view in = *piece;
    while (!in.empty()) {
      if (!in_member) {
        // Like Python's GzipFile, accept zero padding after a member.
        if (member_ended) {
          while (!in.empty() && in.front() == 0) in.remove_prefix(1);
          if (in.empty()) break;
          if (seek != nullptr) seek->fail();  // seek points cover one member only
        }
        in_member = true;
      }
      bool sink_failed = false;  // the sink's errors pass unchanged
      auto consumed = inflater.feed(in, [&](std::string_view out) {
        auto s = sink(out);
        if (!s) sink_failed = true;
        return s;
      });
      if (!consumed) {
        if (sink_failed || consumed.error().kind != ErrorKind::kCorruption)
          return std::unexpected(consumed.error());
        return error(ErrorKind::kCorruption, "{}: damaged gzip data ({})", name,
                     consumed.error().message);
      }
      in.remove_prefix(*consumed);
      if (inflater.finished()) {
        // Concatenated members are one stream (gzip(1) and Python agree).
        in_member = false;
        member_ended = true;
        inflater.reset();
      }
    }
    if (input_done) {
      if (in_member) return error(ErrorKind::kCorruption, "{}: truncated gzip data", name);
      if (!member_ended) return error(ErrorKind::kCorruption, "{}: empty, not gzip data", name);
      return {};
    }
  }
}

// ---------------------------------------------------------------------------------------------
// GnuPG through GPGME

// gpgme_text, its first letter lower-cased for the middle of our messages.
std::string gpgme_message(gpgme_error_t err) {
  std::string message = gpgme_text(err);
  if (!message.empty()) message[0] = static_cast<char>(std::tolower(message[0]));
  return message;
}

// The ciphertext, read from storage in pieces as gpg asks for it.
struct GpgInput {
  GpgInput(const Backend& b, const std::string& n) : backend(b), name(n) {}

  const Backend& backend;
  const std::string& name;
  std::string piece;          // the last piece read
  size_t piece_pos = 0;       // next byte to hand out of `piece`
  uint64_t piece_offset = 0;  // offset of `piece` in the object
  bool at_end = false;        // `piece` was short: nothing after it
  std::optional<Error> error;
  std::exception_ptr exception;

  uint64_t position() const { return piece_offset + piece_pos; }
};

ssize_t gpg_input_read(void* handle, void* buffer, size_t size) {
  auto* in = static_cast<GpgInput*>(handle);
  try {
    if (in->piece_pos == in->piece.size()) {
      if (in->at_end) return 0;
      uint64_t offset = in->position();
      auto piece = in->backend.read_range(in->name, offset, kReadPieceSize);
      if (!piece) {
        in->error = std::move(piece.error());
        errno = EIO;
        return -1;
      }
      in->piece = std::move(*piece);
      in->piece_offset = offset;
      in->piece_pos = 0;
      in->at_end = in->piece.size() < kReadPieceSize;
      if (in->piece.empty()) return 0;
    }
    size_t n = std::min(size, in->piece.size() - in->piece_pos);
    std::memcpy(buffer, in->piece.data() + in->piece_pos, n);
    in->piece_pos += n;
    return static_cast<ssize_t>(n);
  } catch (...) {
    in->exception = std::current_exception();
    errno = EIO;
    return -1;
  }
}

off_t gpg_input_seek(void* handle, off_t offset, int whence) {
  auto* in = static_cast<GpgInput*>(handle);
  try {
    int64_t base = 0;
    switch (whence) {
      case SEEK_SET:
        break;
      case SEEK_CUR:
        base = static_cast<int64_t>(in->position());
        break;
      case SEEK_END: {
        auto size = in->backend.size(in->name);
        if (!size) {
          in->error = std::move(size.error());
          errno = EIO;
          return -1;
        }
        base = static_cast<int64_t>(*size);
        break;
      }
      default:
        errno = EINVAL;
        return -1;
    }
    int64_t target = base + static_cast<int64_t>(offset);
    if (target < 0) {
      errno = EINVAL;
      return -1;
    }
    auto t = static_cast<uint64_t>(target);
    if (t >= in->piece_offset && t <= in->piece_offset + in->piece.size()) {
      in->piece_pos = static_cast<size_t>(t - in->piece_offset);
    } else {
      in->piece.clear();
      in->piece_offset = t;
      in->piece_pos = 0;
      in->at_end = false;
    }
    return static_cast<off_t>(t);
  } catch (...) {
    in->exception = std::current_exception();
    errno = EIO;
    return -1;
  }
}

// The plaintext, handed to the caller's sink.
struct GpgOutput {
  explicit GpgOutput(const ByteSink& sink) : buffer(sink) {}

  SinkBuffer buffer;
  std::optional<Error> error;
  std::exception_ptr exception;
};

// Key ids the message was encrypted to (for "no secret key" messages).
std::string recipient_key_ids(gpgme_decrypt_result_t result) {
  std::string ids;
  if (result == nullptr) return ids;
  for (gpgme_recipient_t r = result->recipients; r != nullptr; r = r->next) {
    if (r->keyid == nullptr) continue;
    if (!ids.empty()) ids += ", ";
    ids += r->keyid;
  }
  return ids;
}

// Turns a failed gpgme_op_decrypt into an Error (the caller has already handled storage and
// sink errors). Observed with gpgme 1.18 and gpg 2.2.40 (loopback, no-symkey-cache):
//   wrong symmetric passphrase      GPG_ERR_BAD_PASSPHRASE (the callback is asked once, never
//                                   with prev_was_bad)
//   wrong secret-key passphrase     GPG_ERR_BAD_PASSPHRASE (source gpg-agent)
//   no passphrase (callback fails)  the callback's own GPG_ERR_NO_PASSPHRASE
//   no secret key                   GPG_ERR_NO_SECKEY, also as each recipient's status
//   flipped byte, bad MDC, truncation  GPG_ERR_DECRYPT_FAILED
//   not OpenPGP, empty              GPG_ERR_NO_DATA
Error decrypt_error(const std::string& name, gpgme_error_t err, gpgme_decrypt_result_t result,
                    const PassphraseRequests& passphrase) {
  const auto auth = [&](std::string why) {
    return Error{ErrorKind::kAuth, fmt::format("cannot decrypt {}: {}", name, why)};
  };
  if (passphrase.missing) return auth("no passphrase given");
  if (passphrase.too_many) return auth("too many passphrase requests");
  gpgme_err_code_t code = gpgme_err_code(err);
  switch (code) {
    case GPG_ERR_BAD_PASSPHRASE:
      return auth("bad passphrase");
    case GPG_ERR_NO_PASSPHRASE:
      return auth("no passphrase given");
    case GPG_ERR_NO_SECKEY: {
      std::string ids = recipient_key_ids(result);
      return auth(ids.empty() ? std::string("no secret key")
                              : fmt::format("no secret key (encrypted to {})", ids));
    }
    default:
      break;
  }
  if (passphrase.bad) return auth("bad passphrase");
  if (result != nullptr && result->unsupported_algorithm != nullptr) {
    return Error{ErrorKind::kUnsupported, fmt::format("cannot decrypt {}: unsupported algorithm {}",
                                                      name, result->unsupported_algorithm)};
  }
  if (result != nullptr && result->legacy_cipher_nomdc) {
    return Error{ErrorKind::kUnsupported,
                 fmt::format("cannot decrypt {}: no integrity protection (legacy data without "
                             "MDC)",
                             name)};
  }
  switch (code) {
    case GPG_ERR_INV_ENGINE:
    case GPG_ERR_ENGINE_TOO_OLD:
    case GPG_ERR_NOT_SUPPORTED:
      return Error{ErrorKind::kUnsupported,
                   fmt::format("cannot decrypt {}: gpg: {}", name, gpgme_message(err))};
    case GPG_ERR_ENOMEM:
      return Error{ErrorKind::kIoError,
                   fmt::format("cannot decrypt {}: {}", name, gpgme_message(err))};
    case GPG_ERR_NO_DATA:
      return Error{ErrorKind::kCorruption,
                   fmt::format("cannot decrypt {}: not OpenPGP data", name)};
    default:
      // GPG_ERR_DECRYPT_FAILED (bad MDC, damaged packets), GPG_ERR_BAD_DATA,
      // GPG_ERR_INV_PACKET, truncation...
      return Error{ErrorKind::kCorruption,
                   fmt::format("cannot decrypt {}: damaged data ({})", name, gpgme_message(err))};
  }
}

// Decrypts in process. nullopt: the message needs gpg, and nothing reached the sink.
std::optional<Status> decode_gpg_symmetric(const Backend& backend, const std::string& name,
                                           const std::string& passphrase, const ByteSink& sink,
                                           SeekBuilder* seek) {
  SymmetricDecryptor decryptor(passphrase, std::cref(sink), name, seek);
  for (uint64_t offset = 0;;) {
    auto piece = backend.read_range(name, offset, kReadPieceSize);
    if (!piece) return std::unexpected(std::move(piece.error()));
    // A short piece means the end of the object (Backend::read_range contract).
    const bool last = piece->size() < kReadPieceSize;
    Status s = decryptor.feed(*piece);
    if (s && last) s = decryptor.finish();
    if (!s) {
      if (s.error().kind == ErrorKind::kUnsupported && !decryptor.produced_output()) {
        return std::nullopt;
      }
      return s;
    }
    if (last) return s;
    offset += piece->size();
  }
}

Status decode_gpg_gpgme(const Backend& backend, const std::string& name,
                        const Credentials& credentials, const ByteSink& sink) {
  const auto setup_error = [&](const char* what, gpgme_error_t err) {
    return error(ErrorKind::kIoError, "cannot decrypt {}: {}: {}", name, what, gpgme_message(err));
  };

  PassphraseRequests passphrase{&credentials.passphrase, kMaxPassphraseRequests};
  auto made = new_gpgme_context(credentials.gnupg_home, &passphrase);
  if (!made) return setup_error(made.error().step, made.error().err);
  GpgmeContext ctx = std::move(*made);

  GpgInput input(backend, name);
  gpgme_data_cbs input_cbs{&gpg_input_read, nullptr, &gpg_input_seek, nullptr};
  gpgme_data_t raw_data = nullptr;
  if (gpgme_error_t err = gpgme_data_new_from_cbs(&raw_data, &input_cbs, &input)) {
    return setup_error("input", err);
  }
  GpgmeData cipher(raw_data);

  // gpg's output goes through a pipe read here in large pieces by a second thread: GPGME's
  // callback data objects move it in 4 KiB reads with a poll each. If the sink fails, the
  // read end is closed, so gpg stops with EPIPE instead of decrypting the rest.
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return error(ErrorKind::kIoError, "cannot decrypt {}: pipe: {}", name, std::strerror(errno));
  }
  ::fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
  GpgOutput output(sink);
  if (gpgme_error_t err = gpgme_data_new_from_fd(&raw_data, fds[1])) {
    ::close(fds[0]);
    ::close(fds[1]);
    return setup_error("output", err);
  }
  GpgmeData plain(raw_data);
  std::thread reader([&output, read_fd = fds[0]] {
    std::string buf(kSinkPieceSize, '\0');
    for (;;) {
      ssize_t n = ::read(read_fd, buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      try {
        auto s = output.buffer.append(std::string_view(buf.data(), static_cast<size_t>(n)));
        if (!s) {
          output.error = std::move(s.error());
          break;
        }
      } catch (...) {
        output.exception = std::current_exception();
        break;
      }
    }
    ::close(read_fd);  // a writer still writing gets EPIPE
    OPENSSL_cleanse(buf.data(), buf.size());
  });

  gpgme_error_t err = gpgme_op_decrypt(ctx.get(), cipher.get(), plain.get());
  ::close(fds[1]);
  reader.join();

  if (input.exception) std::rethrow_exception(input.exception);
  if (output.exception) std::rethrow_exception(output.exception);
  // Our own errors first: gpg only saw a failed read or write.
  if (output.error) return std::unexpected(std::move(*output.error));
  if (input.error) return std::unexpected(std::move(*input.error));
  if (err) {
    return std::unexpected(
        decrypt_error(name, err, gpgme_op_decrypt_result(ctx.get()), passphrase));
  }
  return output.buffer.flush();
}

Status decode_gpg(const Backend& backend, const std::string& name, const Credentials& credentials,
                  const ByteSink& sink, SeekBuilder* seek) {
  if (credentials.passphrase) {
    if (auto s = decode_gpg_symmetric(backend, name, *credentials.passphrase, sink, seek)) {
      return *s;
    }
  }
  if (seek != nullptr) seek->fail();  // gpg's decryption is not seekable into
  return decode_gpg_gpgme(backend, name, credentials, sink);
}

}  // namespace

Codec codec_for_name(std::string_view name) {
  if (ends_with(name, ".gpg") || ends_with(name, ".g")) return Codec::kGpg;
  if (ends_with(name, "gz") || ends_with(name, ".z")) return Codec::kGzip;
  return Codec::kPlain;
}

Status decode_object(const Backend& backend, const std::string& name,
                     const Credentials& credentials, const ByteSink& sink,
                     const SeekRecorder* record) {
  const Codec codec = codec_for_name(name);
  std::optional<SeekBuilder> seek;
  if (record != nullptr) {
    seek.emplace(codec == Codec::kGpg    ? SeekCodec::kGpg
                 : codec == Codec::kGzip ? SeekCodec::kGzip
                                         : SeekCodec::kPlain);
  }
  SeekBuilder* builder = seek ? &*seek : nullptr;
  Status s;
  switch (codec) {
    case Codec::kGpg:
      s = decode_gpg(backend, name, credentials, sink, builder);
      break;
    case Codec::kGzip:
      s = decode_gzip(backend, name, sink, builder);
      break;
    case Codec::kPlain:
      s = decode_plain(backend, name, sink, builder);
      break;
  }
  if (s && seek) {
    if (auto data = seek->finish()) (*record)(std::move(*data));
  }
  return s;
}

Result<std::string> decode_object_to_string(const Backend& backend, const std::string& name,
                                            const Credentials& credentials) {
  std::string out;
  auto s = decode_object(backend, name, credentials, [&](std::string_view piece) -> Status {
    out.append(piece);
    return {};
  });
  if (!s) {
    OPENSSL_cleanse(out.data(), out.size());
    return std::unexpected(std::move(s.error()));
  }
  return out;
}

Result<StoredHashes> hash_object(const Backend& backend, const std::string& name,
                                 uint32_t chunk_size) {
  using Ctx = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;
  Ctx sha1(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  Ctx chunk(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!sha1 || !chunk || EVP_DigestInit_ex(sha1.get(), EVP_sha1(), nullptr) != 1) {
    return error(ErrorKind::kIoError, "{}: cannot initialise SHA1", name);
  }
  StoredHashes out;
  uint64_t in_chunk = 0;  // octets of the current chunk hashed so far
  auto end_chunk = [&]() -> Status {
    std::array<uint8_t, 32> digest{};
    unsigned int length = 0;
    if (EVP_DigestFinal_ex(chunk.get(), digest.data(), &length) != 1 || length != 32) {
      return error(ErrorKind::kIoError, "{}: SHA-256 failed", name);
    }
    out.chunk_sha256.push_back(digest);
    in_chunk = 0;
    return {};
  };
  for (uint64_t offset = 0;;) {
    auto piece = backend.read_range(name, offset, kReadPieceSize);
    if (!piece) return std::unexpected(std::move(piece.error()));
    if (EVP_DigestUpdate(sha1.get(), piece->data(), piece->size()) != 1) {
      return error(ErrorKind::kIoError, "{}: SHA1 failed", name);
    }
    for (std::string_view rest = *piece; chunk_size != 0 && !rest.empty();) {
      if (in_chunk == 0 && EVP_DigestInit_ex(chunk.get(), EVP_sha256(), nullptr) != 1) {
        return error(ErrorKind::kIoError, "{}: cannot initialise SHA-256", name);
      }
      size_t take = static_cast<size_t>(std::min<uint64_t>(rest.size(), chunk_size - in_chunk));
      if (EVP_DigestUpdate(chunk.get(), rest.data(), take) != 1) {
        return error(ErrorKind::kIoError, "{}: SHA-256 failed", name);
      }
      in_chunk += take;
      rest.remove_prefix(take);
      if (in_chunk == chunk_size) {
        if (auto s = end_chunk(); !s) return std::unexpected(s.error());
      }
    }
    out.size += piece->size();
    if (piece->size() < kReadPieceSize) break;
    offset += piece->size();
  }
  if (in_chunk != 0) {
    if (auto s = end_chunk(); !s) return std::unexpected(s.error());
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(sha1.get(), digest, &length) != 1) {
    return error(ErrorKind::kIoError, "{}: SHA1 failed", name);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  out.sha1.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) {
    out.sha1 += kHex[digest[i] >> 4];
    out.sha1 += kHex[digest[i] & 0xf];
  }
  return out;
}

Result<std::string> sha1_of_object(const Backend& backend, const std::string& name) {
  auto h = hash_object(backend, name, 0);
  if (!h) return std::unexpected(std::move(h.error()));
  return std::move(h->sha1);
}

std::string gzip_compress(std::string_view data, int level) {
  level = std::clamp(level, Z_DEFAULT_COMPRESSION, Z_BEST_COMPRESSION);
  z_stream zs{};
  // 15 + 16: gzip header and trailer. Only fails for a bad level or no memory.
  if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::bad_alloc();
  }
  std::unique_ptr<z_stream, decltype(&deflateEnd)> guard(&zs, &deflateEnd);
  std::string out;
  out.resize(deflateBound(&zs, static_cast<uLong>(std::min<size_t>(data.size(), 1u << 30))) + 64);
  size_t written = 0;
  // zlib counts in uInt: feed at most 1 GiB at a time.
  constexpr size_t kMaxChunk = size_t{1} << 30;
  int rc = Z_OK;
  do {
    size_t chunk = std::min(data.size(), kMaxChunk);
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    zs.avail_in = static_cast<uInt>(chunk);
    data.remove_prefix(chunk);
    int flush = data.empty() ? Z_FINISH : Z_NO_FLUSH;
    do {
      if (written == out.size()) out.resize(out.size() * 2);
      size_t room = std::min(out.size() - written, kMaxChunk);
      zs.next_out = reinterpret_cast<Bytef*>(out.data() + written);
      zs.avail_out = static_cast<uInt>(room);
      rc = deflate(&zs, flush);
      written += room - zs.avail_out;
    } while (zs.avail_out == 0 || (flush == Z_FINISH && rc != Z_STREAM_END));
  } while (rc != Z_STREAM_END);
  out.resize(written);
  return out;
}

}  // namespace dupfs::chain
