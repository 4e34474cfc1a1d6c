// OwnerMapper: the one mapping of owner names and local ids (restore, verify, snapshots, backup).
#include "chain/format/owners.h"

#include <gtest/gtest.h>

namespace dupfs::chain {
namespace {

// Names no system has.
constexpr const char* kNoUser = "no-such-user-dupfs";
constexpr const char* kNoGroup = "no-such-group-dupfs";

TEST(OwnerMapperTest, StoredNamesMapToLocalIds) {
  OwnerMapper owners;
  EXPECT_EQ(owners.uid("root", 4242), 0);  // root is 0 on every system
  EXPECT_EQ(owners.gid("root", 4343), 0);
  EXPECT_EQ(owners.uid("root", 4242), 0);  // cached
  EXPECT_EQ(owners.uid(kNoUser, 4242), 4242);
  EXPECT_EQ(owners.gid(kNoGroup, 4343), 4343);
  EXPECT_EQ(owners.uid(kNoUser, 17), 17);  // an unknown name keeps each entry's own id
  EXPECT_EQ(owners.uid("", 4242), 4242);
  EXPECT_EQ(owners.gid("", 4343), 4343);
}

TEST(OwnerMapperTest, NumericOwnerKeepsStoredIds) {
  OwnerMapper owners(true);
  EXPECT_EQ(owners.uid("root", 4242), 4242);
  EXPECT_EQ(owners.gid("root", 4343), 4343);
  TarHeader h;
  h.uid = 7;
  h.gid = 8;
  h.uname = "root";
  h.gname = "root";
  EXPECT_EQ(owners.uid(h), 7);
  EXPECT_EQ(owners.gid(h), 8);
  EXPECT_EQ(OwnerMapper(false).uid(h), 0);
}

TEST(OwnerMapperTest, LocalIdsHaveNames) {
  OwnerMapper owners;
  EXPECT_EQ(owners.user_name(0), "root");
  EXPECT_EQ(owners.group_name(0), "root");
  EXPECT_EQ(&owners.user_name(0), &owners.user_name(0));  // cached
  EXPECT_EQ(owners.user_name(3'999'999'999u), "");
  EXPECT_EQ(owners.group_name(3'999'999'999u), "");
}

}  // namespace
}  // namespace dupfs::chain
