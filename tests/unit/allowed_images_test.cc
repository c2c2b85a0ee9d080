// --allowed-images is checked before anything is reserved: a refused image is
// a 400 that leaves no session record, port or container behind.
#include <gtest/gtest.h>

#include "support/session_harness.h"

namespace sandman {
namespace {

class AllowedImagesTest : public testing::SessionHarness {
  void configure(SessionSettings& s) override { s.allowed_images = {"sandman-workspace:latest", "gpu:cuda12"}; }
};

TEST_F(AllowedImagesTest, ARefusedImageLeavesNothingBehind) {
  auto r = sessions_->create({"alice", std::chrono::minutes(5), std::string("debian:bookworm"), std::nullopt, {}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalid);
  EXPECT_NE(r.error().message.find("--allowed-images"), std::string::npos) << r.error().message;
  auto all = sessions_->list({});
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->empty()) << "a refused create left a session record";
  EXPECT_TRUE(runtime_.calls.empty()) << "the runtime was called for a refused image";
}

TEST_F(AllowedImagesTest, ListedImagesAndTheDefaultAreAccepted) {
  auto r = sessions_->create({"alice", std::chrono::minutes(5), std::string("gpu:cuda12"), std::nullopt, {}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(sessions_->stop(r->session.id, "deleted").ok());
  EXPECT_TRUE(sessions_->create({"bob", std::chrono::minutes(5), std::nullopt, std::nullopt, {}}).ok());
}

}  // namespace
}  // namespace sandman
