// Test helpers: private temporary directories and temporary GnuPG homes driven by the real gpg
// (through run(), tests/support/process.h). Failures throw std::runtime_error (GoogleTest reports
// them as test failures).
//
// Every GpgHome kills the gpg-agent it caused to start when it is destroyed, so tests leave no
// agents behind. Passphrases reach gpg through a pipe (--passphrase-fd 0), never through the
// command line.
#pragma once

#include <sys/stat.h>

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace dupfs::test {

// A temporary GNUPGHOME (mode 0700). All gpg calls made through it use --homedir, so neither
// the process environment nor ~/.gnupg is touched.
class GpgHome {
 public:
  GpgHome() : dir_("dupfs-gnupg-") { ::chmod(dir_.path().c_str(), 0700); }
  ~GpgHome() {
    try {
      run({"gpgconf", "--homedir", dir_.path(), "--kill", "all"});
    } catch (...) {
    }
  }
  GpgHome(const GpgHome&) = delete;
  GpgHome& operator=(const GpgHome&) = delete;

  const std::string& path() const { return dir_.path(); }

  // Runs `gpg --batch --homedir H --pinentry-mode loopback <args>` with `input` on stdin
  // (e.g. a passphrase for --passphrase-fd 0). Does not check the exit code.
  ProcessResult gpg(std::vector<std::string> args, std::string_view input = {}) const {
    std::vector<std::string> argv{"gpg",  "--batch",         "--no-tty", "--homedir",
                                  path(), "--pinentry-mode", "loopback"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, {}, std::chrono::seconds(600), std::string(input));
  }

  // Like gpg(), but throws when gpg fails.
  ProcessResult gpg_checked(std::vector<std::string> args, std::string_view input = {}) const {
    ProcessResult r = gpg(args, input);
    if (r.exit_code != 0) {
      std::string command = "gpg";
      for (const auto& a : args) command += " " + a;
      throw std::runtime_error(command + " failed (exit " + std::to_string(r.exit_code) +
                               "): " + r.err);
    }
    return r;
  }

  // Makes a key pair (ed25519 signing key with a cv25519 encryption subkey: quick to make)
  // protected by `passphrase` (none when empty) and returns its fingerprint.
  std::string generate_key(const std::string& uid, const std::string& passphrase = "") const {
    ProcessResult r = gpg_checked({"--passphrase-fd", "0", "--status-fd", "1", "--quick-gen-key",
                                   uid, "future-default", "default", "never"},
                                  passphrase + "\n");
    // [GNUPG:] KEY_CREATED B <fingerprint> ...
    static constexpr std::string_view kTag = "[GNUPG:] KEY_CREATED ";
    size_t at = r.out.find(kTag);
    if (at != std::string::npos) {
      size_t type_end = r.out.find(' ', at + kTag.size());
      if (type_end != std::string::npos) {
        size_t fpr_end = r.out.find_first_of(" \n", type_end + 1);
        return r.out.substr(type_end + 1, fpr_end - type_end - 1);
      }
    }
    throw std::runtime_error("gpg --quick-gen-key printed no KEY_CREATED: " + r.out + r.err);
  }

  // gpg --symmetric with gpg's defaults (AES256, iterated+salted S2K, compression, MDC), as
  // duplicity does. `extra` goes before --symmetric (e.g. {"--compress-algo", "none"}).
  void encrypt_symmetric(const std::string& in_file, const std::string& out_file,
                         const std::string& passphrase,
                         const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> args{"--yes", "--passphrase-fd", "0"};
    args.insert(args.end(), extra.begin(), extra.end());
    args.insert(args.end(), {"--output", out_file, "--symmetric", in_file});
    gpg_checked(args, passphrase + "\n");
  }

  // gpg --encrypt to one recipient (trusted without a trust database).
  void encrypt_to(const std::string& in_file, const std::string& out_file,
                  const std::string& fingerprint,
                  const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> args{"--yes", "--trust-model", "always", "--recipient", fingerprint};
    args.insert(args.end(), extra.begin(), extra.end());
    args.insert(args.end(), {"--output", out_file, "--encrypt", in_file});
    gpg_checked(args);
  }

  // gpg --sign --encrypt, as duplicity does with --encrypt-key and --sign-key.
  void sign_and_encrypt_to(const std::string& in_file, const std::string& out_file,
                           const std::string& recipient, const std::string& signer,
                           const std::string& signer_passphrase = "") const {
    gpg_checked(
        {"--yes", "--trust-model", "always", "--passphrase-fd", "0", "--default-key", signer,
         "--recipient", recipient, "--output", out_file, "--sign", "--encrypt", in_file},
        signer_passphrase + "\n");
  }

 private:
  TempDir dir_;
};

}  // namespace dupfs::test
