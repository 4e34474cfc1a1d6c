// GPGME as dupfs drives gpg (decode.cc decrypts, encode.cc encrypts and signs): one context per
// operation, set up the same way for both, owned by RAII handles.
#pragma once

#include <gpgme.h>

#include <expected>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>

namespace dupfs::chain {

struct GpgmeContextDeleter {
  void operator()(gpgme_ctx_t ctx) const { gpgme_release(ctx); }
};
struct GpgmeDataDeleter {
  void operator()(gpgme_data_t data) const { gpgme_data_release(data); }
};
struct GpgmeKeyDeleter {
  void operator()(gpgme_key_t key) const { gpgme_key_unref(key); }
};
using GpgmeContext = std::unique_ptr<std::remove_pointer_t<gpgme_ctx_t>, GpgmeContextDeleter>;
using GpgmeData = std::unique_ptr<std::remove_pointer_t<gpgme_data_t>, GpgmeDataDeleter>;
using GpgmeKey = std::unique_ptr<std::remove_pointer_t<gpgme_key_t>, GpgmeKeyDeleter>;

// GPGME's text for an error ("Bad passphrase"), or "gpgme error <code>" when it has none.
std::string gpgme_text(gpgme_error_t err);

// The answers to gpg's passphrase requests (loopback pinentry) and why one was refused. The
// passphrase is written to gpg straight from *passphrase: no copy to wipe.
struct PassphraseRequests {
  const std::optional<std::string>* passphrase = nullptr;
  // Requests answered at most within one operation, so a message encrypted to several keys
  // cannot make us loop.
  int limit = 0;
  int requests = 0;
  bool missing = false;   // asked, but there is no passphrase
  bool bad = false;       // gpg said the one given was wrong (never retried: the same one would
                          // fail again, and there is no one to ask)
  bool too_many = false;  // asked more than `limit` times
};

// Which step of new_gpgme_context failed ("OpenPGP protocol", "GnuPG home directory", ...) and
// GPGME's error, for the caller's message.
struct GpgmeSetupError {
  const char* step;
  gpgme_error_t err;
};

// A context as every use of gpg in dupfs wants it: GPGME initialised (once per process; that also
// ignores SIGPIPE, so a dying gpg cannot kill us), OpenPGP, the GnuPG home `gnupg_home` (empty:
// GNUPGHOME or ~/.gnupg), the loopback pinentry answered from `passphrase` (which must outlive
// the context), and gpg-agent's "no-symkey-cache", so that the passphrase given is the one
// checked, never one the agent remembered from an earlier operation.
std::expected<GpgmeContext, GpgmeSetupError> new_gpgme_context(const std::string& gnupg_home,
                                                               PassphraseRequests* passphrase);

}  // namespace dupfs::chain
