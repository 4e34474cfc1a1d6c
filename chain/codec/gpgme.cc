#include "chain/codec/gpgme.h"

#include <mutex>

namespace dupfs::chain {
namespace {

gpgme_error_t answer_passphrase(void* hook, const char* /*uid_hint*/,
                                const char* /*passphrase_info*/, int prev_was_bad, int fd) {
  auto* state = static_cast<PassphraseRequests*>(hook);
  ++state->requests;
  if (prev_was_bad) {
    state->bad = true;
    return gpgme_error(GPG_ERR_BAD_PASSPHRASE);
  }
  if (!*state->passphrase) {
    state->missing = true;
    return gpgme_error(GPG_ERR_NO_PASSPHRASE);
  }
  if (state->requests > state->limit) {
    state->too_many = true;
    return gpgme_error(GPG_ERR_CANCELED);
  }
  const std::string& passphrase = **state->passphrase;
  if (gpgme_io_writen(fd, passphrase.data(), passphrase.size()) != 0 ||
      gpgme_io_writen(fd, "\n", 1) != 0) {
    return gpgme_error_from_syserror();
  }
  return 0;
}

}  // namespace

std::string gpgme_text(gpgme_error_t err) {
  char buffer[256];
  if (gpgme_strerror_r(err, buffer, sizeof buffer) != 0) {
    return "gpgme error " + std::to_string(static_cast<unsigned>(gpgme_err_code(err)));
  }
  return buffer;
}

std::expected<GpgmeContext, GpgmeSetupError> new_gpgme_context(const std::string& gnupg_home,
                                                               PassphraseRequests* passphrase) {
  static std::once_flag once;
  std::call_once(once, [] { gpgme_check_version(nullptr); });
  const auto failed = [](const char* step, gpgme_error_t err) {
    return std::unexpected(GpgmeSetupError{step, err});
  };
  gpgme_ctx_t raw = nullptr;
  if (gpgme_error_t err = gpgme_new(&raw)) return failed("gpgme_new", err);
  GpgmeContext ctx(raw);
  if (gpgme_error_t err = gpgme_set_protocol(raw, GPGME_PROTOCOL_OpenPGP)) {
    return failed("OpenPGP protocol", err);
  }
  if (!gnupg_home.empty()) {
    if (gpgme_error_t err =
            gpgme_ctx_set_engine_info(raw, GPGME_PROTOCOL_OpenPGP, nullptr, gnupg_home.c_str())) {
      return failed("GnuPG home directory", err);
    }
  }
  if (gpgme_error_t err = gpgme_set_pinentry_mode(raw, GPGME_PINENTRY_MODE_LOOPBACK)) {
    return failed("loopback pinentry", err);
  }
  if (gpgme_error_t err = gpgme_set_ctx_flag(raw, "no-symkey-cache", "1")) {
    return failed("no-symkey-cache", err);
  }
  gpgme_set_passphrase_cb(raw, &answer_passphrase, passphrase);
  return ctx;
}

}  // namespace dupfs::chain
