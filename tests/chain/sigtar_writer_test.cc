// Signature files: written byte-identical to what Python's tarfile writes for the same members
// (duplicity's sigtar writer), read back with their signature bytes, merged newest-wins.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "chain/format/sigtar.h"
#include "chain/format/tar_writer.h"
#include "tests/support/process.h"

namespace dupfs::chain {
namespace {

SigEntry entry(EntryKind kind, Index index, TarType type = TarType::kFile) {
  SigEntry e;
  e.kind = kind;
  e.index = std::move(index);
  e.type = type;
  e.mode = type == TarType::kDirectory ? 0755 : 0644;
  e.uid = 1000;
  e.gid = 1000;
  e.uname = "alice";
  e.gname = "alice";
  e.mtime = 1700000000;
  return e;
}

std::string write_sigtar(const std::vector<std::pair<SigEntry, std::string>>& entries) {
  std::string out;
  SigtarWriter w([&out](std::string_view b) -> Status {
    out.append(b);
    return {};
  });
  for (const auto& [e, sig] : entries) {
    bool dir = e.type == TarType::kDirectory;
    EXPECT_TRUE(w.add(sigtar_member_name(e.kind, e.index, dir), e, sig).has_value());
  }
  EXPECT_TRUE(w.finish().has_value());
  return out;
}

TEST(SigtarWriterTest, ReadsBackWithSignatures) {
  std::vector<std::pair<SigEntry, std::string>> in = {
      {entry(EntryKind::kSnapshot, {}, TarType::kDirectory), ""},
      {entry(EntryKind::kSignature, {"a.txt"}), std::string("rs\x01\x36sig-a", 9)},
      {entry(EntryKind::kSnapshot, {"d"}, TarType::kDirectory), ""},
      {entry(EntryKind::kSignature, {"d", "big"}), std::string(70000, 's')},
      {entry(EntryKind::kDeleted, {"gone"}), ""},
  };
  std::string tar = write_sigtar(in);
  EXPECT_EQ(tar.size() % kTarRecordSize, 0u);
  auto read = read_sigtar_with_signatures(tar);
  ASSERT_TRUE(read.has_value()) << read.error().message;
  ASSERT_EQ(read->size(), in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ((*read)[i].entry.kind, in[i].first.kind);
    EXPECT_EQ((*read)[i].entry.index, in[i].first.index);
    EXPECT_EQ((*read)[i].signature, in[i].second);
  }
  // The plain reader still works and agrees.
  auto plain = read_sigtar(tar);
  ASSERT_TRUE(plain.has_value());
  EXPECT_EQ(plain->size(), in.size());
}

TEST(SigtarWriterTest, ByteIdenticalToPythonTarfile) {
  std::vector<std::pair<SigEntry, std::string>> in = {
      {entry(EntryKind::kSnapshot, {}, TarType::kDirectory), ""},
      {entry(EntryKind::kSignature, {"a.txt"}), std::string(1000, 'x')},
      {entry(EntryKind::kSnapshot, {"d"}, TarType::kDirectory), ""},
      {entry(EntryKind::kDeleted, {"gone"}), ""},
  };
  in[3].first.mode = 0;
  in[3].first.uid = in[3].first.gid = 0;
  in[3].first.uname = in[3].first.gname = "";
  in[3].first.mtime = 0;
  std::string ours = write_sigtar(in);
  // The same members through tarfile.TarFile("arbitrary", "w", fp).addfile(), as duplicity's
  // get_delta_iter writes them.
  auto r = test::run(
      {"/usr/bin/python3.11", "-c",
       "import io, sys, tarfile\n"
       "buf = io.BytesIO()\n"
       "tf = tarfile.TarFile('arbitrary', 'w', buf)\n"
       "def add(name, type, mode, data, uid=1000, uname='alice', mtime=1700000000):\n"
       "    ti = tarfile.TarInfo(name); ti.type = type; ti.mode = mode; ti.uid = ti.gid = uid\n"
       "    ti.uname = ti.gname = uname; ti.mtime = mtime; ti.size = len(data)\n"
       "    tf.addfile(ti, io.BytesIO(data))\n"
       "add('snapshot/', tarfile.DIRTYPE, 0o755, b'')\n"
       "add('signature/a.txt', tarfile.REGTYPE, 0o644, b'x' * 1000)\n"
       "add('snapshot/d', tarfile.DIRTYPE, 0o755, b'')\n"
       "add('deleted/gone', tarfile.REGTYPE, 0, b'', 0, '', 0)\n"
       "tf.close()\n"
       "sys.stdout.write(buf.getvalue().hex())\n"});
  ASSERT_TRUE(r.ok()) << r.err;
  std::string hex;
  for (unsigned char c : ours) hex += fmt::format("{:02x}", c);
  EXPECT_EQ(hex, r.out);
}

TEST(SigtarWriterTest, MergeKeepsNewestAndDropsDeleted) {
  std::vector<std::vector<SignedSigEntry>> layers(2);
  layers[0].push_back({entry(EntryKind::kSnapshot, {}, TarType::kDirectory), ""});
  layers[0].push_back({entry(EntryKind::kSignature, {"a"}), "old-a"});
  layers[0].push_back({entry(EntryKind::kSignature, {"b"}), "old-b"});
  layers[1].push_back({entry(EntryKind::kSignature, {"a"}), "new-a"});
  layers[1].push_back({entry(EntryKind::kDeleted, {"b"}), ""});
  layers[1].push_back({entry(EntryKind::kSignature, {"c"}), "new-c"});
  auto merged = merge_signed_signatures(std::move(layers));
  ASSERT_EQ(merged.size(), 3u);
  EXPECT_TRUE(merged[0].entry.index.empty());
  EXPECT_EQ(merged[1].signature, "new-a");
  EXPECT_EQ(merged[2].entry.index, Index{"c"});
}

}  // namespace
}  // namespace dupfs::chain
