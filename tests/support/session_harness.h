// SessionHarness: a SessionManager for unit tests: real SQLite, workspaces and
// sshd files in a temp dir, the recording runtime instead of Docker, a manual
// clock, and a readiness probe the test can switch off. Not thread-safe.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>

#include "core/session_manager.h"
#include "store/sqlite_store.h"
#include "support/manual_clock.h"
#include "support/recording_runtime.h"

namespace sandman::testing {

class SessionHarness : public ::testing::Test {
 protected:
  void SetUp() override {
    using namespace std::chrono_literals;
    char tmpl[] = "/tmp/sandman-unit-XXXXXX";
    dir_ = mkdtemp(tmpl);
    store_ = SqliteStore::open(dir_ + "/sandman.db").value();
    workspaces_ = std::make_unique<WorkspaceManager>(dir_ + "/ws");
    files_ = std::make_unique<SshdFiles>(dir_ + "/session-files");
    keyring_ = std::make_unique<GatewayKeyring>(dir_ + "/gateway-keys");
    // Below the kernel's ephemeral range (32768-60999): a busy machine's outgoing
    // connections take ports there, and the allocator would find them in use.
    settings_.ports = {29400, 29402};
    settings_.ready_timeout = 200ms;
    settings_.ready_poll = 1ms;
    settings_.ssh_bind = "127.0.0.1";
    clock_.setAutoAdvanceSleeps(true);  // readiness polling moves the manual clock
    configure(settings_);
    rebuild();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Suites adjust the settings here, before the first SessionManager is built.
  virtual void configure(SessionSettings&) {}

  // A new SessionManager over the same store and runtime (a restarted daemon).
  void rebuild() {
    sessions_ = std::make_unique<SessionManager>(
        settings_, *store_, runtime_, *workspaces_, *files_, *keyring_, gpus_, clock_,
        [this](const std::string&, int, Millis) { return probe_ok_ ? Status() : unavailable("not yet"); });
  }

  Session create(const std::string& user, Millis ttl = std::chrono::minutes(10)) {
    auto r = sessions_->create({user, ttl, std::nullopt, std::nullopt, {}});
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? r->session : Session{};
  }

  std::string dir_;
  ManualClock clock_;
  RecordingRuntime runtime_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<WorkspaceManager> workspaces_;
  std::unique_ptr<SshdFiles> files_;
  std::unique_ptr<GatewayKeyring> keyring_;
  GpuLeases gpus_{nullptr, {}};
  SessionSettings settings_;
  std::unique_ptr<SessionManager> sessions_;
  std::atomic<bool> probe_ok_{true};
};

}  // namespace sandman::testing
