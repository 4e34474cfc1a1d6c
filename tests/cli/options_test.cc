// cli/options.h: the one no-echo question and the one place exit codes are decided.
#include "cli/options.h"

#include <gtest/gtest.h>
#include <stdio.h>
#include <unistd.h>

#include <sstream>
#include <string>

#include "tests/support/duplicity.h"
#include "tests/support/process.h"

namespace dupfs::cli {
namespace {

// read_hidden_line on a pipe holding `input`; `asked` gets what was written to the other stream.
std::optional<std::string> answer(const std::string& input, std::string& asked) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  EXPECT_EQ(::write(fds[1], input.data(), input.size()), static_cast<ssize_t>(input.size()));
  ::close(fds[1]);
  FILE* in = ::fdopen(fds[0], "r");
  char* text = nullptr;
  size_t size = 0;
  FILE* out = ::open_memstream(&text, &size);
  auto line = read_hidden_line(in, out, "Passphrase: ");
  std::fclose(in);
  std::fclose(out);
  asked.assign(text, size);
  std::free(text);
  return line;
}

TEST(ReadHiddenLine, ReadsOneLineAfterThePrompt) {
  std::string asked;
  EXPECT_EQ(answer("secret\nmore\n", asked), "secret");
  EXPECT_EQ(asked, "Passphrase: \n");  // the newline the user typed was not echoed
  EXPECT_EQ(answer("\n", asked), "");
  EXPECT_EQ(answer("no newline", asked), "no newline");
  EXPECT_EQ(answer("", asked), std::nullopt);  // the end of input before anything was typed
  EXPECT_EQ(asked, "Passphrase: \n");
}

TEST(ExitCodes, DecidedByTheErrorUnlessNamed) {
  testing::internal::CaptureStderr();
  EXPECT_EQ(report_error("dupfs", Error{ErrorKind::kInvalidArgument, "bad"}), 2);
  EXPECT_EQ(report_error("dupfs", Error{ErrorKind::kIoError, "io"}), 1);
  EXPECT_EQ(report_error("dupfs", Error{ErrorKind::kAuth, "auth"}), 1);
  EXPECT_EQ(report_error("dupfs", Error{ErrorKind::kIoError, "hash"}, kMismatchedHash), 21);
  EXPECT_EQ(testing::internal::GetCapturedStderr(),
            "dupfs: bad\ndupfs: io\ndupfs: auth\ndupfs: hash\n");
}

// The numbers are duplicity's own (log.ErrorCode), for scripts written for either program.
TEST(ExitCodes, AreDuplicitys) {
  if (access(test::kDuplicityPython, X_OK) != 0) GTEST_SKIP() << "no duplicity";
  std::vector<std::string> argv = {
      test::kDuplicityPython, "-c",
      "import gettext\ngettext.install('duplicity')\nfrom duplicity.log import ErrorCode as E\n"
      "print(E.generic, E.command_line, E.restore_dir_exists, E.verify_dir_doesnt_exist,\n"
      "      E.restore_dir_not_found, E.no_restore_files, E.mismatched_hash, E.user_error)\n"};
  auto r = test::run(argv);
  ASSERT_TRUE(r.ok()) << test::describe(argv, r);
  std::ostringstream ours;
  ours << kFailure << ' ' << kCommandLine << ' ' << kRestoreDirExists << ' ' << kVerifyDirMissing
       << ' ' << kRestoreDirNotFound << ' ' << kNoRestoreFiles << ' ' << kMismatchedHash << ' '
       << kUserError << '\n';
  EXPECT_EQ(r.out, ours.str());
}

}  // namespace
}  // namespace dupfs::cli
