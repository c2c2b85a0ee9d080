// KubeClient and PodCache against a real kube-apiserver and etcd, never a fake:
// the kube_integration_tests binary, run by tests/k8s/kube_client_test.sh, which
// starts them and sets SANDMAN_TEST_KUBE_* (a test fails when one it needs is
// missing: run it through the script). Each test works in a namespace of its
// own, removed at the end; the restart and 410 tests restart the API server
// through SANDMAN_TEST_KUBE_RESTART and compact etcd through SANDMAN_TEST_ETCD.
//
// What yields 410 (v1.35.4, watch cache on, found by trying): compacting etcd
// alone does not; the API server's watch cache keeps serving watches and
// continue tokens from resourceVersions etcd has compacted away. A restarted
// API server starts its watch cache at etcd's current revision, and a watch from
// any older resourceVersion is answered 200 with an ERROR event (code 410, reason
// Expired, "too old resource version: X (Y)"). So a cache that reconnects after
// a restart relists; the tests compact etcd as well, so that nothing can serve
// the old version.
#include "runtime/kube_client.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/http_client.h"
#include "runtime/pod_cache.h"

namespace sandman {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

// Fails the calling test (fatally: use through ASSERT_NO_FATAL_FAILURE or at the
// top of a test) when NAME is unset; a suite run without its server must not pass.
void requireEnv(const char* name) {
  ASSERT_FALSE(env(name).empty()) << name << " is not set: run tests/k8s/kube_client_test.sh";
}

KubeConfig adminConfig() {
  KubeConfig c;
  c.server = env("SANDMAN_TEST_KUBE_SERVER");
  c.ca_file = env("SANDMAN_TEST_KUBE_CA");
  c.client_cert_file = env("SANDMAN_TEST_KUBE_CERT");
  c.client_key_file = env("SANDMAN_TEST_KUBE_KEY");
  if (c.client_cert_file.empty()) c.token_file = env("SANDMAN_TEST_KUBE_TOKEN_FILE");
  return c;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json podJson(const std::string& name, const json& labels) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", name}, {"labels", labels}}},
          {"spec",
           {{"automountServiceAccountToken", false},
            {"containers", json::array({{{"name", "main"}, {"image", "sandman-test:none"}}})}}}};
}

// etcd's JSON gateway: the current revision, and compaction up to it.
int64_t etcdRevision() {
  HttpRequest req;
  req.method = "POST";
  req.url = env("SANDMAN_TEST_ETCD") + "/v3/kv/range";
  req.body = R"({"key":"AA=="})";
  auto r = HttpClient().send(req);
  if (!r.ok() || r->status != 200) return -1;
  return std::stoll(json::parse(r->body)["header"]["revision"].get<std::string>());
}

bool etcdCompact(int64_t revision) {
  HttpRequest req;
  req.method = "POST";
  req.url = env("SANDMAN_TEST_ETCD") + "/v3/kv/compaction";
  req.body = json{{"revision", std::to_string(revision)}, {"physical", true}}.dump();
  auto r = HttpClient().send(req);
  return r.ok() && r->status == 200;
}

class KubeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* v : {"SANDMAN_TEST_KUBE_SERVER", "SANDMAN_TEST_KUBE_CA", "SANDMAN_TEST_KUBE_CERT",
                          "SANDMAN_TEST_KUBE_KEY"}) {
      ASSERT_NO_FATAL_FAILURE(requireEnv(v));
    }
    client_ = std::make_unique<KubeClient>(adminConfig());
    std::random_device rd;
    char suffix[9];
    std::snprintf(suffix, sizeof suffix, "%08x", rd());
    ns_ = "kc-" + std::string(suffix);
    auto r = client_->create("/api/v1/namespaces", {{"metadata", {{"name", ns_}}}});
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_EQ(r->status, 201) << r->message();
    // No controller-manager runs here: ServiceAccount admission wants "default" to exist
    // (409: a controller-manager made it first).
    r = client_->create(podsPath().substr(0, podsPath().size() - 4) + "serviceaccounts",
                        {{"metadata", {{"name", "default"}}}});
    ASSERT_TRUE(r.ok() && (r->status == 201 || r->status == 409));
  }

  void TearDown() override {
    if (!client_) return;
    // Pods never bound to a node go at once; the namespace itself stays
    // Terminating without a namespace controller, which a throwaway server can live with.
    (void)client_->remove(podsPath());
    (void)client_->remove("/api/v1/namespaces/" + ns_);
  }

  std::string podsPath() const { return "/api/v1/namespaces/" + ns_ + "/pods"; }

  // Creates prefix-0 .. prefix-(n-1) on a few threads (one client, shared: it is thread-safe).
  void createPods(const std::string& prefix, int n, const json& labels, int first = 0) {
    std::atomic<int> next{first}, failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&] {
        for (int i = next++; i < first + n; i = next++) {
          auto r = client_->create(podsPath(), podJson(prefix + "-" + std::to_string(i), labels));
          if (!r.ok() || r->status != 201) ++failures;
        }
      });
    }
    for (auto& t : threads) t.join();
    ASSERT_EQ(failures.load(), 0);
  }

  void deletePod(const std::string& name) {
    auto r = client_->remove(podsPath() + "/" + name, 0);
    ASSERT_TRUE(r.ok() && r->status == 200) << (r.ok() ? r->message() : r.error().message);
  }

  // What the API server holds: name -> resourceVersion.
  std::map<std::string, std::string> truth(const std::string& selector) {
    auto r = client_->get(podsPath() + "?labelSelector=" + urlEncode(selector));
    EXPECT_TRUE(r.ok() && r->status == 200);
    std::map<std::string, std::string> out;
    if (!r.ok()) return out;
    for (const auto& item : r->body["items"]) {
      out[item["metadata"]["name"]] = item["metadata"]["resourceVersion"];
    }
    return out;
  }

  static std::map<std::string, std::string> cached(const PodCache& cache) {
    std::map<std::string, std::string> out;
    for (const auto& p : cache.list()) out[p.name] = p.resource_version;
    return out;
  }

  // Waits until the cache holds exactly what the API server holds.
  bool converges(const PodCache& cache, const std::string& selector, std::chrono::seconds limit) {
    auto want = truth(selector);
    auto deadline = std::chrono::steady_clock::now() + limit;
    uint64_t gen = cache.generation();
    while (cached(cache) != want) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      gen = cache.waitForChange(gen, 500ms);
    }
    return true;
  }

  std::unique_ptr<KubeClient> client_;
  std::string ns_;
};

// --- KubeClient ----------------------------------------------------------------------------

using KubeClientTest = KubeTest;

TEST_F(KubeClientTest, CreateGetPatchReplaceRemove) {
  auto r = client_->create(podsPath(), podJson("one", {{"app", "kc"}}));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 201) << r->message();
  EXPECT_EQ(r->body["metadata"]["name"], "one");

  r = client_->create(podsPath(), podJson("one", {{"app", "kc"}}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 409);
  EXPECT_EQ(r->reason(), "AlreadyExists");
  EXPECT_NE(r->message().find("already exists"), std::string::npos) << r->message();

  r = client_->get(podsPath() + "/one");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body["spec"]["containers"][0]["image"], "sandman-test:none");

  r = client_->patchMerge(podsPath() + "/one", {{"metadata", {{"annotations", {{"sandman.io/note", "x"}}}}}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200) << r->message();
  EXPECT_EQ(r->body["metadata"]["annotations"]["sandman.io/note"], "x");

  json obj = r->body;
  obj["metadata"]["labels"]["extra"] = "y";
  r = client_->replace(podsPath() + "/one", obj);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200) << r->message();
  EXPECT_EQ(r->body["metadata"]["labels"]["extra"], "y");

  // A stale resourceVersion is a conflict, not a silent overwrite.
  r = client_->replace(podsPath() + "/one", obj);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 409);
  EXPECT_EQ(r->reason(), "Conflict");

  r = client_->remove(podsPath() + "/one", 0);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200) << r->message();
  r = client_->get(podsPath() + "/one");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->reason(), "NotFound");
  r = client_->remove(podsPath() + "/one");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 404);
}

TEST_F(KubeClientTest, StrictFieldValidationRefusesUnknownFields) {
  json typo = podJson("typo", {{"app", "kc"}});
  typo["spec"]["containers"][0]["imagePullPolicyy"] = "Never";
  auto r = client_->create(podsPath(), typo);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->message().find("unknown field"), std::string::npos) << r->message();
  EXPECT_NE(r->message().find("imagePullPolicyy"), std::string::npos) << r->message();

  // Merged into a query the caller already has (and a caller's own fieldValidation is overridden).
  r = client_->create(podsPath() + "?dryRun=All&fieldValidation=Ignore", typo);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400) << r->message();

  ASSERT_EQ(client_->create(podsPath(), podJson("ok", {{"app", "kc"}}))->status, 201);
  // A patch is refused too, as 422 Invalid: the unknown field shows when the patched object is decoded.
  r = client_->patchMerge(podsPath() + "/ok", {{"spec", {{"activeDeadlineSecondz", 5}}}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 422);
  EXPECT_EQ(r->reason(), "Invalid");
  EXPECT_NE(r->message().find("activeDeadlineSecondz"), std::string::npos) << r->message();

  auto obj = client_->get(podsPath() + "/ok")->body;
  obj["metadata"]["bogus"] = true;
  r = client_->replace(podsPath() + "/ok", obj);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400) << r->message();
}

TEST_F(KubeClientTest, TransportFailureIsUnavailable) {
  KubeConfig c = adminConfig();
  c.server = "https://127.0.0.1:1";  // nothing listens on port 1
  KubeClient dead(c);
  auto r = dead.get("/api/v1/namespaces");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
  std::atomic<bool> stop{false};
  auto w = dead.watch("/api/v1/pods?watch=1", [](const std::string&, const json&) { return true; }, stop);
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.error().kind, ErrorKind::kUnavailable);
}

// The server's CA must be named: the system's CAs do not sign a test cluster.
TEST_F(KubeClientTest, UnknownServerCertificateIsRefused) {
  KubeConfig c = adminConfig();
  c.ca_file = "";
  KubeClient client(c);
  auto r = client.get("/api/v1/namespaces");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
}

TEST_F(KubeClientTest, BearerTokenIsReReadAfter401) {
  ASSERT_NO_FATAL_FAILURE(requireEnv("SANDMAN_TEST_KUBE_TOKEN_FILE"));
  std::string good = readFile(env("SANDMAN_TEST_KUBE_TOKEN_FILE"));
  ASSERT_FALSE(good.empty()) << "SANDMAN_TEST_KUBE_TOKEN_FILE names an empty or unreadable file";
  auto dir = fs::temp_directory_path() / ("kc-token-" + ns_);
  fs::create_directories(dir);
  std::string file = (dir / "token").string();
  std::string bad(good.size(), 'x');
  { std::ofstream(file) << bad << "\n"; }

  KubeConfig c = adminConfig();
  c.client_cert_file.clear();
  c.client_key_file.clear();
  c.token_file = file;
  KubeClient client(c);
  auto r = client.get("/api/v1/namespaces/" + ns_);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 401);  // re-read once, still the bad token
  EXPECT_EQ(client.unauthorizedRetries(), 1u);

  // Rotated in place so that stat() sees nothing new (same inode, size and
  // mtime): only the 401 makes the client read the file again.
  struct stat before {};
  ASSERT_EQ(stat(file.c_str(), &before), 0);
  { std::fstream(file, std::ios::in | std::ios::out) << good << "\n"; }
  timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(utimensat(AT_FDCWD, file.c_str(), times, 0), 0);
  r = client.get("/api/v1/namespaces/" + ns_);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200) << r->message();
  EXPECT_EQ(client.unauthorizedRetries(), 2u);

  // A rotation stat() can see is picked up before any 401.
  { std::ofstream(file) << bad << "x\n"; }
  r = client.get("/api/v1/namespaces/" + ns_);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 401);
  { std::ofstream(file) << good << "\n\n"; }
  r = client.get("/api/v1/namespaces/" + ns_);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(client.unauthorizedRetries(), 3u);
  fs::remove_all(dir);
}

TEST_F(KubeClientTest, WatchDeliversEventsAsTheyHappenAndStopsWithinASecond) {
  auto list = client_->get(podsPath());
  ASSERT_TRUE(list.ok() && list->status == 200);
  std::string rv = list->body["metadata"]["resourceVersion"];
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<std::string, std::string>> seen;  // type, name
  std::optional<Result<KubeClient::WatchEnd>> end;
  std::thread watcher([&] {
    auto r = client_->watch(podsPath() + "?watch=1&resourceVersion=" + rv + "&timeoutSeconds=120",
                            [&](const std::string& type, const json& obj) {
                              std::lock_guard lock(mu);
                              seen.emplace_back(type, obj["metadata"]["name"]);
                              cv.notify_all();
                              return true;
                            },
                            stop);
    std::lock_guard lock(mu);
    end.emplace(std::move(r));
    cv.notify_all();
  });
  ASSERT_EQ(client_->create(podsPath(), podJson("w1", {{"app", "kc"}}))->status, 201);
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 10s, [&] { return !seen.empty(); })) << "no event while the stream is open";
    EXPECT_EQ(seen[0], std::make_pair(std::string("ADDED"), std::string("w1")));
  }
  deletePod("w1");
  {
    std::unique_lock lock(mu);
    // (A MODIFIED with deletionTimestamp may come first.)
    ASSERT_TRUE(cv.wait_for(lock, 10s, [&] { return seen.back().first == "DELETED"; }));
    EXPECT_EQ(seen.back().second, "w1");
  }
  auto t0 = std::chrono::steady_clock::now();
  stop = true;
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 5s, [&] { return end.has_value(); }));
  }
  auto took = std::chrono::steady_clock::now() - t0;
  watcher.join();
  ASSERT_TRUE(end->ok());
  EXPECT_EQ(**end, KubeClient::WatchEnd::kStopped);
  EXPECT_LT(took, 1500ms);

  // The server ends the stream at timeoutSeconds.
  stop = false;
  auto r = client_->watch(podsPath() + "?watch=1&timeoutSeconds=1",
                          [](const std::string&, const json&) { return true; }, stop);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, KubeClient::WatchEnd::kClosed);

  // on_event returning false stops it too.
  ASSERT_EQ(client_->create(podsPath(), podJson("w2", {{"app", "kc"}}))->status, 201);
  r = client_->watch(podsPath() + "?watch=1&timeoutSeconds=30", [](const std::string&, const json&) { return false; },
                     stop);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, KubeClient::WatchEnd::kStopped);

  // An HTTP error on a watch is an error with the API's message.
  r = client_->watch("/api/v1/namespaces/" + ns_ + "/nosuchresource?watch=1",
                     [](const std::string&, const json&) { return true; }, stop);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kNotFound);
}

// --- PodCache ---------------------------------------------------------------------------------

class PodCacheTest : public KubeTest {
 protected:
  static constexpr const char* kSelector = "app.kubernetes.io/managed-by=sandman,sandman.io/instance=t";
  json labels() const { return {{"app.kubernetes.io/managed-by", "sandman"}, {"sandman.io/instance", "t"}}; }

  // Every change the listener reported, in order.
  struct Recorder {
    std::mutex mu;
    std::vector<std::pair<std::string, bool>> changes;  // name, deleted
    void operator()(const std::string& name, const std::optional<PodView>& pod) {
      std::lock_guard lock(mu);
      changes.emplace_back(name, !pod.has_value());
    }
    std::set<std::string> deleted() {
      std::lock_guard lock(mu);
      std::set<std::string> out;
      for (const auto& [name, gone] : changes) if (gone) out.insert(name);
      return out;
    }
    std::set<std::string> updated() {
      std::lock_guard lock(mu);
      std::set<std::string> out;
      for (const auto& [name, gone] : changes) if (!gone) out.insert(name);
      return out;
    }
    void clear() {
      std::lock_guard lock(mu);
      changes.clear();
    }
  };

  PodCache::Options fastOptions() const {
    PodCache::Options o;
    o.backoff_min = 200ms;
    o.backoff_max = 2s;
    return o;
  }
};

TEST_F(PodCacheTest, ListsPagedThenFollowsTheWatch) {
  createPods("sess", 520, labels());
  createPods("other", 3, {{"app.kubernetes.io/managed-by", "someone-else"}});

  PodCache cache(*client_, ns_, kSelector);
  auto recorder = std::make_shared<Recorder>();
  cache.setListener([recorder](const std::string& n, const std::optional<PodView>& p) { (*recorder)(n, p); });
  PodCache::Options o;
  o.watch_timeout_min_s = 2;  // streams end often: re-watching from the last RV must lose nothing
  o.watch_timeout_max_s = 3;
  cache.setOptions(o);
  cache.start();
  ASSERT_TRUE(cache.waitSynced(30s));
  auto s = cache.stats();
  EXPECT_EQ(s.pods, 520u);
  EXPECT_GE(s.pages, 2u) << "520 pods at limit=500 take a continue";
  EXPECT_EQ(recorder->updated().size(), 520u);
  EXPECT_FALSE(cache.get("other-0").has_value());
  auto p = cache.get("sess-7");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->phase, "Pending");
  EXPECT_FALSE(p->uid.empty());
  EXPECT_EQ(p->labels.at("sandman.io/instance"), "t");

  // Add, change, delete: each arrives through the watch.
  recorder->clear();
  uint64_t gen = cache.generation();
  createPods("sess", 1, labels(), 600);
  ASSERT_EQ(client_->patchMerge(podsPath() + "/sess-3", {{"metadata", {{"annotations", {{"a", "b"}}}}}})->status,
            200);
  deletePod("sess-5");
  ASSERT_TRUE(converges(cache, kSelector, 20s));
  auto t0 = std::chrono::steady_clock::now();
  while (recorder->deleted().empty() && std::chrono::steady_clock::now() - t0 < 5s) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_GT(cache.generation(), gen);
  EXPECT_TRUE(cache.get("sess-600").has_value());
  EXPECT_EQ(cache.get("sess-3")->annotations.at("a"), "b");
  EXPECT_FALSE(cache.get("sess-5").has_value());
  EXPECT_EQ(recorder->deleted(), std::set<std::string>{"sess-5"});
  // sess-5 may also show up as updated: a delete first sets deletionTimestamp (MODIFIED), then DELETED.
  auto updated = recorder->updated();
  updated.erase("sess-5");
  EXPECT_EQ(updated, (std::set<std::string>{"sess-3", "sess-600"}));

  // A pod relabelled out of the selector leaves the cache (the server sends DELETED).
  ASSERT_EQ(client_->patchMerge(podsPath() + "/sess-9", {{"metadata", {{"labels", {{"sandman.io/instance", "u"}}}}}})
                ->status,
            200);
  ASSERT_TRUE(converges(cache, kSelector, 20s));
  EXPECT_FALSE(cache.get("sess-9").has_value());

  // Several streams ended at timeoutSeconds and were resumed from the last RV: one list only.
  t0 = std::chrono::steady_clock::now();
  while (cache.stats().watches < 3 && std::chrono::steady_clock::now() - t0 < 15s) std::this_thread::sleep_for(200ms);
  createPods("sess", 1, labels(), 601);
  ASSERT_TRUE(converges(cache, kSelector, 20s));
  s = cache.stats();
  EXPECT_GE(s.watches, 3u);
  EXPECT_EQ(s.lists, 1u);
  EXPECT_EQ(s.gone, 0u);
  EXPECT_EQ(s.errors, 0u) << s.last_error;
  EXPECT_GT(s.bytes, 0u);
  std::printf("[ figures  ] 520 pods: %zu bytes in views (%.0f per pod); %llu watches, %llu bookmarks\n", s.bytes,
              static_cast<double>(s.bytes) / static_cast<double>(s.pods),
              static_cast<unsigned long long>(s.watches), static_cast<unsigned long long>(s.bookmarks));

  auto t1 = std::chrono::steady_clock::now();
  cache.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t1, 1500ms);
}

TEST_F(PodCacheTest, SurvivesAnApiServerRestart) {
  ASSERT_NO_FATAL_FAILURE(requireEnv("SANDMAN_TEST_KUBE_RESTART"));
  std::string restart = env("SANDMAN_TEST_KUBE_RESTART");
  createPods("sess", 30, labels());
  PodCache cache(*client_, ns_, kSelector);
  cache.setOptions(fastOptions());
  cache.start();
  ASSERT_TRUE(cache.waitSynced(30s));

  // Changes just before the server goes away, maybe not yet seen by the cache.
  deletePod("sess-1");
  createPods("sess", 2, labels(), 100);
  ASSERT_EQ(std::system(restart.c_str()), 0);
  // And right after it is back, while the cache may still be backing off.
  deletePod("sess-2");
  createPods("sess", 2, labels(), 200);
  ASSERT_TRUE(converges(cache, kSelector, 60s));
  auto s = cache.stats();
  EXPECT_EQ(s.pods, 32u);
  EXPECT_GE(s.errors + s.gone, 1u) << "the restart went unnoticed";
  std::printf("[ figures  ] after the restart: lists %llu, watches %llu, gone %llu, errors %llu (%s)\n",
              static_cast<unsigned long long>(s.lists), static_cast<unsigned long long>(s.watches),
              static_cast<unsigned long long>(s.gone), static_cast<unsigned long long>(s.errors),
              s.last_error.c_str());

  // And it keeps following the watch afterwards.
  deletePod("sess-3");
  ASSERT_TRUE(converges(cache, kSelector, 20s));
  EXPECT_FALSE(cache.get("sess-3").has_value());
}

TEST_F(PodCacheTest, RelistsAfter410AndReportsWhatWentMissing) {
  ASSERT_NO_FATAL_FAILURE(requireEnv("SANDMAN_TEST_KUBE_RESTART"));
  ASSERT_NO_FATAL_FAILURE(requireEnv("SANDMAN_TEST_ETCD"));
  std::string restart = env("SANDMAN_TEST_KUBE_RESTART");
  createPods("sess", 20, labels());
  PodCache cache(*client_, ns_, kSelector);
  auto recorder = std::make_shared<Recorder>();
  cache.setListener([recorder](const std::string& n, const std::optional<PodView>& p) { (*recorder)(n, p); });
  cache.setOptions(fastOptions());
  cache.start();
  ASSERT_TRUE(cache.waitSynced(30s));
  ASSERT_TRUE(converges(cache, kSelector, 10s));

  // The cache is away (as across a long partition) while pods come and go.
  cache.stop();
  std::string old_rv = cache.stats().resource_version;
  recorder->clear();
  for (int i : {0, 1, 2, 3, 4}) deletePod("sess-" + std::to_string(i));
  createPods("sess", 3, labels(), 100);
  ASSERT_EQ(client_->patchMerge(podsPath() + "/sess-10", {{"metadata", {{"annotations", {{"a", "b"}}}}}})->status,
            200);
  // Compaction removes the old revision from etcd; the restart drops the watch
  // cache's history (which, alone, would still serve it: see the top of this file).
  int64_t rev = etcdRevision();
  ASSERT_GT(rev, 0);
  ASSERT_TRUE(etcdCompact(rev));
  ASSERT_EQ(std::system(restart.c_str()), 0);

  // The plain client sees it as kGone.
  std::atomic<bool> stop{false};
  auto w = client_->watch(podsPath() + "?watch=1&resourceVersion=" + old_rv + "&timeoutSeconds=5",
                          [](const std::string&, const json&) { return true; }, stop);
  ASSERT_TRUE(w.ok()) << w.error().message;
  EXPECT_EQ(*w, KubeClient::WatchEnd::kGone);

  cache.start();  // resumes from old_rv: 410, relist, diff
  ASSERT_TRUE(converges(cache, kSelector, 60s));
  auto s = cache.stats();
  EXPECT_GE(s.gone, 1u);
  EXPECT_GE(s.lists, 2u);
  EXPECT_EQ(s.pods, 18u);
  // The listener hears of a relist's changes just after the cache holds them.
  auto t0 = std::chrono::steady_clock::now();
  while (recorder->deleted().size() < 5 && std::chrono::steady_clock::now() - t0 < 5s) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(recorder->deleted(), (std::set<std::string>{"sess-0", "sess-1", "sess-2", "sess-3", "sess-4"}));
  EXPECT_EQ(recorder->updated(), (std::set<std::string>{"sess-10", "sess-100", "sess-101", "sess-102"}));
  EXPECT_EQ(cache.get("sess-10")->annotations.at("a"), "b");

  deletePod("sess-11");
  ASSERT_TRUE(converges(cache, kSelector, 20s));
  EXPECT_FALSE(cache.get("sess-11").has_value());
}

}  // namespace
}  // namespace sandman
