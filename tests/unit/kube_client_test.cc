// The parts of KubeClient and PodCache that need no API server: a pod's view,
// query merging, Status messages, the token file's re-reading, in-cluster config.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "runtime/kube_client.h"
#include "runtime/pod_cache.h"

namespace sandman {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

json runningPod() {
  return json::parse(R"({
    "kind": "Pod", "apiVersion": "v1",
    "metadata": {"name": "sess-abc", "uid": "u-1", "resourceVersion": "42",
                 "labels": {"component": "session", "sandman.io/user": "alice"},
                 "annotations": {"sandman.io/expires-at": "2030-01-01T00:00:00Z"},
                 "managedFields": [{"manager": "x"}]},
    "spec": {"nodeName": "gpu-1", "containers": [{"name": "main", "image": "i"}]},
    "status": {"phase": "Running", "podIP": "10.1.2.3",
      "conditions": [{"type": "PodScheduled", "status": "True"},
                     {"type": "Ready", "status": "True"}],
      "containerStatuses": [{"name": "main", "ready": true, "state": {"running": {"startedAt": "x"}}}]}
  })");
}

TEST(PodViewTest, RunningAndReady) {
  PodView v = podViewFromJson(runningPod());
  EXPECT_EQ(v.name, "sess-abc");
  EXPECT_EQ(v.uid, "u-1");
  EXPECT_EQ(v.resource_version, "42");
  EXPECT_EQ(v.node_name, "gpu-1");
  EXPECT_EQ(v.pod_ip, "10.1.2.3");
  EXPECT_EQ(v.phase, "Running");
  EXPECT_TRUE(v.ready);
  EXPECT_FALSE(v.deleting);
  EXPECT_EQ(v.labels.at("sandman.io/user"), "alice");
  EXPECT_EQ(v.annotations.at("sandman.io/expires-at"), "2030-01-01T00:00:00Z");
  EXPECT_EQ(v.exit_code, -1);
  EXPECT_TRUE(podServing(v));
}

TEST(PodViewTest, NotServingWithoutReadyIpOrWhileDeleting) {
  json pod = runningPod();
  pod["status"]["conditions"][1]["status"] = "False";
  EXPECT_FALSE(podViewFromJson(pod).ready);
  EXPECT_FALSE(podServing(podViewFromJson(pod)));
  pod = runningPod();
  pod["status"].erase("podIP");
  EXPECT_FALSE(podServing(podViewFromJson(pod)));
  pod = runningPod();
  pod["metadata"]["deletionTimestamp"] = "2030-01-01T00:00:00Z";
  EXPECT_TRUE(podViewFromJson(pod).deleting);
  EXPECT_FALSE(podServing(podViewFromJson(pod)));
}

TEST(PodViewTest, UnschedulableCarriesTheSchedulersMessage) {
  json pod = json::parse(R"({
    "metadata": {"name": "p"},
    "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
      "reason": "Unschedulable",
      "message": "0/2 nodes are available: 2 Insufficient nvidia.com/mig-1g.10gb."}]}
  })");
  PodView v = podViewFromJson(pod);
  EXPECT_EQ(v.phase, "Pending");
  EXPECT_EQ(v.unschedulable_message, "0/2 nodes are available: 2 Insufficient nvidia.com/mig-1g.10gb.");
  EXPECT_FALSE(v.ready);
  // Not scheduled yet for another reason (SchedulingGated): no message to report.
  pod["status"]["conditions"][0]["reason"] = "SchedulingGated";
  EXPECT_EQ(podViewFromJson(pod).unschedulable_message, "");
}

TEST(PodViewTest, WaitingAndTerminatedContainer) {
  json pod = json::parse(R"({
    "metadata": {"name": "p"},
    "status": {"phase": "Pending", "containerStatuses": [
      {"name": "main", "state": {"waiting": {"reason": "ImagePullBackOff",
                                             "message": "Back-off pulling image \"nope\""}}},
      {"name": "side", "state": {"waiting": {"reason": "ContainerCreating"}}}]}
  })");
  PodView v = podViewFromJson(pod);
  EXPECT_EQ(v.waiting_reason, "ImagePullBackOff");
  EXPECT_EQ(v.waiting_message, "Back-off pulling image \"nope\"");
  EXPECT_EQ(v.exit_code, -1);

  pod = json::parse(R"({
    "metadata": {"name": "p"},
    "status": {"phase": "Failed", "reason": "DeadlineExceeded",
      "message": "Pod was active on the node longer than the specified deadline",
      "containerStatuses": [{"name": "main", "state": {"terminated": {"reason": "Error", "exitCode": 137,
                                                                      "message": "killed"}}}]}
  })");
  v = podViewFromJson(pod);
  EXPECT_EQ(v.phase, "Failed");
  EXPECT_EQ(v.reason, "DeadlineExceeded");
  EXPECT_EQ(v.message, "Pod was active on the node longer than the specified deadline");
  EXPECT_EQ(v.terminated_reason, "Error");
  EXPECT_EQ(v.terminated_message, "killed");
  EXPECT_EQ(v.exit_code, 137);
  EXPECT_EQ(v.waiting_reason, "");
}

TEST(PodViewTest, OddShapesLeaveFieldsEmpty) {
  for (const char* text : {"{}", "null", "[]", R"({"metadata": 5, "status": {"conditions": {}}})",
                           R"({"status": {"containerStatuses": [], "phase": 3}})",
                           R"({"metadata": {"labels": {"a": 1, "b": "x"}}})"}) {
    PodView v = podViewFromJson(json::parse(text));
    EXPECT_EQ(v.name, "") << text;
    EXPECT_EQ(v.phase, "") << text;
    EXPECT_FALSE(v.ready) << text;
  }
  EXPECT_EQ(podViewFromJson(json::parse(R"({"metadata": {"labels": {"a": 1, "b": "x"}}})")).labels.size(), 1u);
}

TEST(PodViewTest, ApproximateBytesCountsStringsAndMaps) {
  PodView small;
  PodView big = podViewFromJson(runningPod());
  EXPECT_EQ(approximateBytes(small), sizeof(PodView));
  EXPECT_GT(approximateBytes(big), sizeof(PodView) + 2 * 64);
}

TEST(KubeQueryTest, WithQueryParamAppendsOrReplaces) {
  EXPECT_EQ(withQueryParam("/api/v1/pods", "fieldValidation", "Strict"), "/api/v1/pods?fieldValidation=Strict");
  EXPECT_EQ(withQueryParam("/api/v1/pods?dryRun=All", "fieldValidation", "Strict"),
            "/api/v1/pods?dryRun=All&fieldValidation=Strict");
  EXPECT_EQ(withQueryParam("/api/v1/pods?fieldValidation=Ignore&dryRun=All", "fieldValidation", "Strict"),
            "/api/v1/pods?fieldValidation=Strict&dryRun=All");
  EXPECT_EQ(withQueryParam("/p?fieldValidation=Warn&fieldValidation=Ignore", "fieldValidation", "Strict"),
            "/p?fieldValidation=Strict");
  EXPECT_EQ(withQueryParam("/p?", "a", "b"), "/p?a=b");
  EXPECT_EQ(withQueryParam("/p?x&&y=1", "a", "b"), "/p?x&y=1&a=b");
  // A parameter whose name only starts with the key is another parameter.
  EXPECT_EQ(withQueryParam("/p?fieldValidationX=1", "fieldValidation", "Strict"),
            "/p?fieldValidationX=1&fieldValidation=Strict");
}

TEST(KubeQueryTest, UrlEncodeKeepsUnreservedOnly) {
  EXPECT_EQ(urlEncode("app.kubernetes.io/managed-by=sandman,sandman.io/instance=a_b~c"),
            "app.kubernetes.io%2Fmanaged-by%3Dsandman%2Csandman.io%2Finstance%3Da_b~c");
  EXPECT_EQ(urlEncode("a b+"), "a%20b%2B");
  EXPECT_EQ(urlEncode(""), "");
}

TEST(KubeResponseTest, MessageAndReason) {
  KubeResponse r;
  r.status = 409;
  r.body = json::parse(R"({"kind":"Status","message":"pods \"x\" already exists","reason":"AlreadyExists"})");
  EXPECT_EQ(r.message(), "pods \"x\" already exists");
  EXPECT_EQ(r.reason(), "AlreadyExists");
  r.status = 503;
  r.body = json::object();
  EXPECT_EQ(r.message(), "HTTP 503");
  EXPECT_EQ(r.reason(), "");
  r.body = json::array();
  EXPECT_EQ(r.message(), "HTTP 503");
}

class TokenFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("sandman-token-" + std::to_string(getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    file_ = (dir_ / "token").string();
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const std::string& text) { std::ofstream(file_, std::ios::trunc) << text; }
  fs::path dir_;
  std::string file_;
};

TEST_F(TokenFileTest, CachedUntilTheFileChanges) {
  write("first\n");
  TokenSource src(file_);
  EXPECT_EQ(*src.token(), "first");
  EXPECT_EQ(*src.token(), "first");
  EXPECT_EQ(src.reloads(), 1u);
  write("second-token\n");  // another size (and mtime): noticed without a 401
  EXPECT_EQ(*src.token(), "second-token");
  EXPECT_EQ(src.reloads(), 2u);
}

TEST_F(TokenFileTest, ProjectedRotationBySymlinkSwapIsNoticed) {
  // The kubelet writes a new ..data dir and swaps the link: a new inode behind the same name.
  fs::create_directories(dir_ / "a");
  fs::create_directories(dir_ / "b");
  std::ofstream(dir_ / "a" / "token") << "aaaa";
  std::ofstream(dir_ / "b" / "token") << "bbbb";
  fs::create_directory_symlink("a", dir_ / "..data");
  fs::create_symlink("..data/token", dir_ / "link");
  TokenSource src((dir_ / "link").string());
  EXPECT_EQ(*src.token(), "aaaa");
  fs::create_directory_symlink("b", dir_ / "..data_tmp");
  fs::rename(dir_ / "..data_tmp", dir_ / "..data");
  EXPECT_EQ(*src.token(), "bbbb");
}

TEST_F(TokenFileTest, ForcedReloadReadsAnUnchangedLookingFile) {
  write("aaaa");
  TokenSource src(file_);
  EXPECT_EQ(*src.token(), "aaaa");
  struct stat before {};
  ASSERT_EQ(stat(file_.c_str(), &before), 0);
  { std::fstream(file_, std::ios::in | std::ios::out) << "bbbb"; }
  timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(utimensat(AT_FDCWD, file_.c_str(), times, 0), 0);
  EXPECT_EQ(*src.token(), "aaaa");  // stat() saw nothing
  EXPECT_EQ(*src.token(true), "bbbb");
}

TEST_F(TokenFileTest, MissingOrEmptyFile) {
  TokenSource missing(file_);
  auto r = missing.token();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
  write("\n");
  EXPECT_FALSE(TokenSource(file_).token().ok());
  // Once read, a file briefly gone (mid-rotation) or emptied keeps the last token.
  write("kept");
  TokenSource src(file_);
  EXPECT_EQ(*src.token(), "kept");
  fs::remove(file_);
  EXPECT_EQ(*src.token(true), "kept");
}

TEST_F(TokenFileTest, InClusterConfigFromEnvironment) {
  write("t");
  std::ofstream(dir_ / "ca.crt") << "pem";
  setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
  setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  auto c = inClusterConfig(dir_.string());
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->server, "https://10.96.0.1:443");
  EXPECT_EQ(c->token_file, file_);
  EXPECT_EQ(c->ca_file, (dir_ / "ca.crt").string());
  setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
  EXPECT_EQ(inClusterConfig(dir_.string())->server, "https://[fd00::1]:443");
  fs::remove(dir_ / "ca.crt");
  EXPECT_FALSE(inClusterConfig(dir_.string()).ok());
  unsetenv("KUBERNETES_SERVICE_HOST");
  unsetenv("KUBERNETES_SERVICE_PORT");
  auto none = inClusterConfig(dir_.string());
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().kind, ErrorKind::kInvalid);
}

}  // namespace
}  // namespace sandman
