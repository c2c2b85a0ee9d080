// WebAssets: what the daemon answers for the dashboard's files (content
// types, revalidation, gzip, caching of hashed names) and without them.
#include "web/web_assets.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace sandman {
namespace {

namespace fs = std::filesystem;

std::string header(const WebReply& r, const std::string& name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return v;
  return "";
}

class WebAssetsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("web-assets-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
                                        "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_ / "assets");
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const std::string& rel, const std::string& body) { std::ofstream(dir_ / rel, std::ios::binary) << body; }
  fs::path dir_;
};

TEST_F(WebAssetsTest, ServesIndexAtRootAndAssetsWithTheirTypes) {
  write("index.html", "<!doctype html>");
  write("assets/app-ABCD1234.js", "console.log(1)");
  write("assets/app-ABCD1234.css", "body{}");
  auto w = WebAssets::load(dir_.string());
  ASSERT_TRUE(w.ok()) << w.error().message;
  auto r = w->serve("/", "", "");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
  EXPECT_EQ(r.body, "<!doctype html>");
  EXPECT_EQ(header(r, "Cache-Control"), "no-cache");
  EXPECT_NE(header(r, "Content-Security-Policy").find("default-src 'self'"), std::string::npos);
  r = w->serve("/assets/app-ABCD1234.js", "", "");
  EXPECT_EQ(r.content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(header(r, "Cache-Control"), "public, max-age=31536000, immutable");
  EXPECT_EQ(w->serve("/assets/app-ABCD1234.css", "", "").content_type, "text/css; charset=utf-8");
  EXPECT_EQ(w->serve("/assets/nope.js", "", "").status, 404);
  EXPECT_EQ(w->serve("/../index.html", "", "").status, 404);
}

TEST_F(WebAssetsTest, RevalidatesWithTheETag) {
  write("index.html", "<p>a</p>");
  auto w = WebAssets::load(dir_.string());
  ASSERT_TRUE(w.ok());
  const std::string etag = header(w->serve("/", "", ""), "ETag");
  ASSERT_FALSE(etag.empty());
  auto r = w->serve("/", etag, "");
  EXPECT_EQ(r.status, 304);
  EXPECT_TRUE(r.body.empty());
  EXPECT_EQ(w->serve("/", "\"0000000000000000\"", "").status, 200);
  // Another content, another validator (the ETag comes from the bytes).
  write("index.html", "<p>b</p>");
  auto w2 = WebAssets::load(dir_.string());
  ASSERT_TRUE(w2.ok());
  EXPECT_NE(header(w2->serve("/", "", ""), "ETag"), etag);
}

TEST_F(WebAssetsTest, SendsThePrecompressedTwinOnlyToBrowsersThatAcceptGzip) {
  write("index.html", "x");
  write("assets/app-ABCD1234.js", "plain");
  write("assets/app-ABCD1234.js.gz", "GZ");
  auto w = WebAssets::load(dir_.string());
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->fileCount(), 2u);  // the .gz is a twin, not a file of its own
  auto gz = w->serve("/assets/app-ABCD1234.js", "", "gzip, deflate, br");
  EXPECT_EQ(gz.body, "GZ");
  EXPECT_EQ(header(gz, "Content-Encoding"), "gzip");
  EXPECT_EQ(header(gz, "Vary"), "Accept-Encoding");
  auto plain = w->serve("/assets/app-ABCD1234.js", "", "");
  EXPECT_EQ(plain.body, "plain");
  EXPECT_EQ(header(plain, "Content-Encoding"), "");
  EXPECT_EQ(w->serve("/assets/app-ABCD1234.js", "", "gzip;q=0").body, "plain");
  // The two encodings have different validators.
  EXPECT_NE(header(gz, "ETag"), header(plain, "ETag"));
  EXPECT_EQ(w->serve("/assets/app-ABCD1234.js", header(gz, "ETag"), "gzip").status, 304);
}

TEST_F(WebAssetsTest, RefusesADirectoryWithoutIndexAndSaysSoPlainly) {
  write("assets/app-ABCD1234.js", "x");
  auto w = WebAssets::load(dir_.string());
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.error().message.find("index.html"), std::string::npos);
  auto r = WebAssets::missing("no dashboard in /x <here>");
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find("not installed"), std::string::npos);
  EXPECT_NE(r.body.find("&lt;here&gt;"), std::string::npos);
  EXPECT_NE(r.body.find("--web-root"), std::string::npos);
}

}  // namespace
}  // namespace sandman
