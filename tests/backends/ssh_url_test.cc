// sftp:// and scp:// URLs and --ssh-options as duplicity 0.8.22 reads them (backend.py's
// ParsedUrl over urllib, ssh_paramiko_backend.py's path rule and option regexes).
#include "backends/ssh_url.h"

#include <gtest/gtest.h>

namespace dupfs {
namespace {

SshLocation parse_ok(const std::string& url) {
  auto loc = parse_ssh_url(url);
  EXPECT_TRUE(loc.has_value()) << url << ": " << (loc ? "" : loc.error().message);
  return loc ? *loc : SshLocation{};
}

TEST(SshUrl, AbsolutePathAfterDoubleSlash) {
  SshLocation loc = parse_ok("scp://user@host//var/backup");
  EXPECT_EQ(loc.scheme, "scp");
  EXPECT_EQ(loc.user, "user");
  EXPECT_FALSE(loc.password.has_value());
  EXPECT_EQ(loc.host, "host");
  EXPECT_EQ(loc.port, 0);
  EXPECT_EQ(loc.directory, "/var/backup");
}

TEST(SshUrl, RelativePathIsUnderTheLoginDirectory) {
  SshLocation loc = parse_ok("sftp://host/backups/laptop");
  EXPECT_FALSE(loc.user.has_value());
  EXPECT_EQ(loc.host, "host");
  EXPECT_EQ(loc.directory, "backups/laptop");
}

TEST(SshUrl, NoPathIsTheLoginDirectory) {
  EXPECT_EQ(parse_ok("sftp://host").directory, ".");
  EXPECT_EQ(parse_ok("sftp://host/").directory, ".");
}

TEST(SshUrl, RootDirectory) { EXPECT_EQ(parse_ok("sftp://host//").directory, "/"); }

TEST(SshUrl, TrailingSlashesDropped) {
  EXPECT_EQ(parse_ok("sftp://host//var/backup/").directory, "/var/backup");
  EXPECT_EQ(parse_ok("sftp://host/rel//").directory, "rel");
}

TEST(SshUrl, Port) {
  SshLocation loc = parse_ok("scp://user@host:2222//var/backup");
  EXPECT_EQ(loc.port, 2222);
  EXPECT_EQ(loc.host, "host");
  EXPECT_EQ(loc.directory, "/var/backup");
  // An empty port is no port (urllib).
  EXPECT_EQ(parse_ok("sftp://host:/x").port, 0);
}

TEST(SshUrl, BadPortRefused) {
  for (const char* url :
       {"sftp://host:http/x", "sftp://host:70000/x", "sftp://host:0/x", "sftp://host:-1/x"}) {
    auto loc = parse_ssh_url(url);
    ASSERT_FALSE(loc.has_value()) << url;
    EXPECT_EQ(loc.error().kind, ErrorKind::kInvalidArgument);
    EXPECT_NE(loc.error().message.find("port"), std::string::npos) << loc.error().message;
  }
}

TEST(SshUrl, PasswordIsParsedAndNeverDescribed) {
  SshLocation loc = parse_ok("sftp://tim:s%40cret:x@host:22/backup");
  EXPECT_EQ(loc.user, "tim");
  EXPECT_EQ(loc.password, "s@cret:x");
  EXPECT_EQ(loc.port, 22);
  EXPECT_EQ(loc.describe().find("cret"), std::string::npos) << loc.describe();
  EXPECT_EQ(loc.describe(), "sftp://tim@host:22/backup");
}

TEST(SshUrl, PercentDecoding) {
  SshLocation loc = parse_ok("sftp://j%20doe@host//srv/my%20backups");
  EXPECT_EQ(loc.user, "j doe");
  EXPECT_EQ(loc.directory, "/srv/my backups");
}

TEST(SshUrl, HostIsLowercased) {
  EXPECT_EQ(parse_ok("sftp://Backup.Example.ORG/x").host, "backup.example.org");
}

TEST(SshUrl, LastAtSeparatesUserInfo) {
  SshLocation loc = parse_ok("sftp://me@example.org@host/x");
  EXPECT_EQ(loc.user, "me@example.org");
  EXPECT_EQ(loc.host, "host");
}

TEST(SshUrl, Ipv6) {
  SshLocation loc = parse_ok("sftp://root@[::1]:2022//srv");
  EXPECT_EQ(loc.host, "::1");
  EXPECT_EQ(loc.port, 2022);
  EXPECT_EQ(loc.directory, "/srv");
  EXPECT_EQ(loc.describe(), "sftp://root@[::1]:2022//srv");
}

TEST(SshUrl, QueryAndFragmentIgnored) {
  EXPECT_EQ(parse_ok("sftp://host//srv/b?x=1").directory, "/srv/b");
  EXPECT_EQ(parse_ok("sftp://host//srv/b#frag").directory, "/srv/b");
}

TEST(SshUrl, EverySshScheme) {
  for (const char* scheme :
       {"sftp", "scp", "paramiko+sftp", "paramiko+scp", "pexpect+sftp", "pexpect+scp"}) {
    SshLocation loc = parse_ok(std::string(scheme) + "://host//b");
    EXPECT_EQ(loc.scheme, scheme);
    EXPECT_TRUE(is_ssh_scheme(scheme));
  }
  EXPECT_FALSE(is_ssh_scheme("ftp"));
  EXPECT_FALSE(is_ssh_scheme("file"));
}

TEST(SshUrl, MissingHostRefused) {
  for (const char* url : {"sftp:///var/backup", "scp://user@/x", "sftp://:22/x"}) {
    auto loc = parse_ssh_url(url);
    ASSERT_FALSE(loc.has_value()) << url;
    EXPECT_EQ(loc.error().kind, ErrorKind::kInvalidArgument);
    EXPECT_NE(loc.error().message.find("host"), std::string::npos) << loc.error().message;
  }
}

TEST(SshUrl, ErrorsNeverShowThePassword) {
  auto loc = parse_ssh_url("sftp://tim:hunter2@host:99999/x");
  ASSERT_FALSE(loc.has_value());
  EXPECT_EQ(loc.error().message.find("hunter2"), std::string::npos) << loc.error().message;
}

TEST(SshUrl, DescribeRoundTrips) {
  for (const char* url : {"scp://user@host//var/backup", "sftp://host/rel/dir",
                          "sftp://u@h:2222//srv", "sftp://host"}) {
    EXPECT_EQ(parse_ok(url).describe(), url);
  }
}

TEST(SshOptions, IdentityFileForms) {
  auto o = parse_ssh_options(
      "-oIdentityFile=/k/one -o IdentityFile=/k/two -i /k/three -i/k/four "
      "-oidentityfile='/k/with space' \"-oIdentityFile /k/six\" -oIdentityFile=~/.ssh/seven",
      "/home/tim");
  ASSERT_TRUE(o.has_value()) << o.error().message;
  std::vector<std::string> want{
      "/k/one", "/k/two", "/k/three", "/k/four", "/k/with space", "/k/six", "/home/tim/.ssh/seven"};
  EXPECT_EQ(o->identity_files, want);
}

TEST(SshOptions, KnownHostsFilesAndPort) {
  auto o = parse_ssh_options(
      "-oUserKnownHostsFile=/tmp/kh -oGlobalKnownHostsFile=\"/etc/other kh\" -oPort=2200", "/root");
  ASSERT_TRUE(o.has_value()) << o.error().message;
  EXPECT_EQ(o->user_known_hosts, "/tmp/kh");
  EXPECT_EQ(o->global_known_hosts, "/etc/other kh");
  EXPECT_EQ(o->port, 2200);
  EXPECT_TRUE(o->identity_files.empty());
}

TEST(SshOptions, Ciphers) {
  EXPECT_EQ(parse_ssh_options("-oCiphers=aes128-gcm@openssh.com,aes128-ctr", "/root")->ciphers,
            "aes128-gcm@openssh.com,aes128-ctr");
  EXPECT_EQ(parse_ssh_options("-c aes256-ctr", "/root")->ciphers, "aes256-ctr");
}

TEST(SshOptions, OthersAreIgnoredNotRefused) {
  auto o = parse_ssh_options("-oStrictHostKeyChecking=no -C -oCompression=yes", "/root");
  ASSERT_TRUE(o.has_value()) << o.error().message;
  EXPECT_EQ(o->ignored.size(), 3u);
  EXPECT_TRUE(o->identity_files.empty());
  EXPECT_FALSE(o->user_known_hosts.has_value());
}

TEST(SshOptions, Empty) {
  auto o = parse_ssh_options("", "/root");
  ASSERT_TRUE(o.has_value());
  EXPECT_TRUE(o->identity_files.empty());
  EXPECT_TRUE(o->ignored.empty());
}

TEST(SshOptions, Malformed) {
  for (const char* text : {"-oIdentityFile='/unbalanced", "-i", "-oPort=ssh", "-oIdentityFile"}) {
    auto o = parse_ssh_options(text, "/root");
    ASSERT_FALSE(o.has_value()) << text;
    EXPECT_EQ(o.error().kind, ErrorKind::kInvalidArgument);
  }
}

}  // namespace
}  // namespace dupfs
