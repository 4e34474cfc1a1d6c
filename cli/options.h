// Option values shared by dupfs's commands: sizes, the passphrase, the metadata cache location.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "backends/backend.h"
#include "backends/base/error.h"
#include "backends/base/log.h"

namespace dupfs::cli {

// The exit codes of dupfs and dupfs-backup, all of them (tests and scripts check them):
// duplicity's numbers (log.ErrorCode) where duplicity names the failure.
enum ExitCode : int {
  kSuccess = 0,
  kFailure = 1,      // any other failure; verify's differences (duplicity's exit_val = 1)
  kCommandLine = 2,  // bad input on the command line
  kRestoreDirExists = 11,
  kVerifyDirMissing = 12,
  kRestoreDirNotFound = 19,
  kNoRestoreFiles = 20,
  kMismatchedHash = 21,  // a volume's hash is not the manifest's
  kUserError = 23,       // another process holds the archive dir's lock (remove/cleanup --force)
};

// The one place where an Error becomes a message ("<program>: <message>" on stderr) and an
// exit code: `code` where the caller names the failure, else kCommandLine for kInvalidArgument
// and kFailure for everything else.
int report_error(const char* program, const Error& e, std::optional<ExitCode> code = std::nullopt);

// A command line CLI11 could not parse: "<program>: <what> (see --help)", kCommandLine.
int report_usage_error(const char* program, const CLI::ParseError& e);

// duplicity's -v: a number 0-9 or a word (error, warning, notice, info, debug) or its letter.
Result<LogLevel> parse_verbosity(const std::string& text);

// "512M", "1G", "64K", "123" (bytes). kInvalidArgument otherwise.
Result<uint64_t> parse_size(const std::string& text);

// The value of environment variable `name`, or nullopt; the variable is scrubbed and removed, so
// neither child processes (gpg) nor /proc/<pid>/environ show it afterwards.
std::optional<std::string> take_secret_from_environment(const char* name);

// Makes the process undumpable: no core file, no ptrace by other processes of the same user.
void protect_process_memory();

// The one question without echo (passphrases, passwords): `prompt` written to `out`, one line
// read from `in` with the terminal's echo off while it is read (when `in` is a terminal), and a
// newline written in place of the one typed. nullopt when `in` ends before anything was read.
std::optional<std::string> read_hidden_line(std::FILE* in, std::FILE* out, const char* prompt);

// PASSPHRASE from the environment (then removed from it, so child processes never see it),
// else a prompt on the terminal when the location holds encrypted files and one is attached;
// nullopt otherwise.
std::optional<std::string> passphrase_for(const Backend& backend);

// ~/.cache/dupfs/<id of the URL> (XDG_CACHE_HOME respected).
std::string default_archive_dir(const std::string& url);

// Storage options every command takes, with duplicity's names (--num-retries, --timeout,
// --ssh-options, --ssh-askpass, --ssl-*, --s3-*, --ftp-*); what they mean is up to the backend the
// URL selects.
struct StorageArgs {
  int num_retries = 5;
  int timeout = 30;  // seconds
  std::string ssh_options;
  bool ssh_askpass = false;
  // TLS (webdavs://, ftps://, ftpes://, https endpoints).
  std::string ssl_cacert_file;
  std::string ssl_cacert_path;
  bool ssl_no_check_certificate = false;
  // S3.
  std::string s3_endpoint_url;
  std::string s3_region_name;
  int s3_multipart_chunk_size = 25;  // MB, as duplicity takes it
  bool s3_use_rrs = false, s3_use_ia = false, s3_use_onezone_ia = false;
  bool s3_use_glacier = false, s3_use_glacier_ir = false, s3_use_deep_archive = false;
  bool s3_use_new_style = false;  // accepted; dupfs picks the addressing (s3_backend.h)
  // FTP.
  bool ftp_regular = false;
  bool ftp_passive = false;
};
void add_storage_options(CLI::App& command, StorageArgs& args);

// The backend for `url` (file://, a plain path, sftp://, scp://, s3://, ftp://, ...), configured
// by `args`; the password comes from the URL, else FTP_PASSWORD (then removed from the
// environment), else a question on the terminal: for SSH only with --ssh-askpass, for FTP
// always (duplicity's order).
Result<std::unique_ptr<Backend>> open_storage(const std::string& url, const StorageArgs& args);

}  // namespace dupfs::cli
