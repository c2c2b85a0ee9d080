// Alert rule files: the shipped defaults round-trip, strict validation names
// file, rule and field, summaries render, and each metric reads the right
// part of a snapshot.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "alerts/rule_file.h"

namespace sandman {
namespace {

using nlohmann::json;

std::string oneRule(const json& rule) { return json{{"rules", json::array({rule})}}.dump(); }

json hot() {
  return {{"name", "Hot"}, {"metric", "temperature"}, {"op", ">"}, {"threshold", 85},
          {"for", "3s"},   {"severity", "critical"},  {"summary", "GPU {{gpu}} at {{value}} C"}};
}

std::string errorOf(const std::string& text) {
  auto r = parseAlertRules(text, "/etc/sandman/rules.json");
  return r.ok() ? std::string("(parsed)") : r.error().message;
}

TEST(AlertRules, DefaultsRoundTripThroughTheFileFormat) {
  auto defaults = defaultAlertRules();
  ASSERT_EQ(defaults.size(), 12u);
  auto back = parseAlertRules(alertRulesJson(defaults).dump(2), "defaults");
  ASSERT_TRUE(back.ok()) << back.error().message;
  ASSERT_EQ(back->size(), defaults.size());
  for (size_t i = 0; i < defaults.size(); ++i) {
    EXPECT_EQ(alertRuleJson((*back)[i]), alertRuleJson(defaults[i]));
  }
  EXPECT_EQ(defaults[0].name, "GpuOverheating");
  EXPECT_EQ(defaults[0].for_duration, std::chrono::minutes(5));
  EXPECT_EQ(defaults[1].for_duration, std::chrono::minutes(10));
}

TEST(AlertRules, ShippedDeployFileEqualsTheBuiltInDefaults) {
  // CMake compiles this file by absolute path: the repository is two levels up.
  auto repo = std::filesystem::path(__FILE__).parent_path().parent_path().parent_path();
  std::ifstream in(repo / "deploy" / "alert-rules.json");
  ASSERT_TRUE(in.good()) << repo;
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto rules = parseAlertRules(text, "deploy/alert-rules.json");
  ASSERT_TRUE(rules.ok()) << rules.error().message;
  EXPECT_EQ(alertRulesJson(*rules), alertRulesJson(defaultAlertRules()));
}

TEST(AlertRules, ParsesARuleAndDefaultsItsScope) {
  auto r = parseAlertRules(oneRule(hot()), "x");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)[0].for_duration, std::chrono::seconds(3));
  EXPECT_EQ((*r)[0].scope, AlertScope::kGpu);
  EXPECT_EQ((*r)[0].op, CompareOp::kGt);
}

TEST(AlertRules, FlagMetricsNeedNoComparison) {
  auto r = parseAlertRules(oneRule({{"name", "Lost"}, {"metric", "gpu_lost"}, {"severity", "critical"}}), "x");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)[0].op, CompareOp::kGt);
  EXPECT_EQ((*r)[0].threshold, 0);
  EXPECT_EQ((*r)[0].for_duration, Millis(0));
}

TEST(AlertRules, ErrorsNameTheFileTheRuleAndTheField) {
  json j = hot();
  j["treshold"] = 85;
  std::string e = errorOf(oneRule(j));
  EXPECT_NE(e.find("/etc/sandman/rules.json"), std::string::npos) << e;
  EXPECT_NE(e.find("rules[0] (Hot)"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown field 'treshold'"), std::string::npos) << e;

  struct Case {
    const char* key;
    json value;
    const char* expect;
  };
  const Case cases[] = {
      {"metric", "temp", "'metric': 'temp' is not one of temperature"},
      {"op", "=>", "'op'"},
      {"for", "5 minutes", "'for'"},
      {"severity", "page", "'severity'"},
      {"scope", "instance", "cannot be evaluated per instance"},
      {"threshold", "85", "'threshold' must be a number"},
      {"summary", "{{temperature}}", "unknown placeholder {{temperature}}"},
      {"name", "has space", "'name'"},
  };
  for (const auto& c : cases) {
    json r = hot();
    r[c.key] = c.value;
    std::string msg = errorOf(oneRule(r));
    EXPECT_NE(msg.find(c.expect), std::string::npos) << c.key << ": " << msg;
  }
  json no_threshold = hot();
  no_threshold.erase("threshold");
  EXPECT_NE(errorOf(oneRule(no_threshold)).find("'threshold' is required"), std::string::npos);
  EXPECT_NE(errorOf(json{{"rules", {hot(), hot()}}}.dump()).find("rules[1] (Hot): 'name': duplicate"),
            std::string::npos);
  EXPECT_NE(errorOf("{\"rules\": [").find("not valid JSON"), std::string::npos);
  EXPECT_NE(errorOf("{\"rule\": []}").find("unknown top-level field 'rule'"), std::string::npos);
  EXPECT_NE(errorOf("[]").find("expected a JSON object"), std::string::npos);
}

TEST(AlertRules, MissingFileIsAnErrorNamingIt) {
  auto r = loadAlertRules("/nonexistent/rules.json");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("/nonexistent/rules.json"), std::string::npos);
  auto d = loadAlertRules("");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->size(), defaultAlertRules().size());
}

TEST(AlertRules, SummaryRendersLabelsValueAndThreshold) {
  AlertRule r = defaultAlertRules()[0];
  std::string s = renderSummary(r, {{"gpu", "2"}, {"gpu_uuid", "GPU-x"}}, 91.5);
  EXPECT_EQ(s, "GPU 2 (GPU-x) at 91.5 C, above 85 C for 5m");
  AlertRule util = defaultAlertRules()[1];
  EXPECT_EQ(renderSummary(util, {{"gpu", "0"}}, 99), "GPU 0 utilisation 99% above 95% for 10m")
      << "a missing label leaves no double space";
  EXPECT_EQ(formatAlertValue(-12.126), "-12.13");
  EXPECT_EQ(formatAlertValue(0.5), "0.5");
}

TEST(AlertRules, SubjectsReadMemoryRatioAndPowerOverLimit) {
  TelemetrySnapshot s;
  DeviceReading g;
  g.uuid = g.gpu_uuid = "GPU-a";
  g.memory_used_mib = 76000;
  g.memory_total_mib = 80000;
  g.power_w = 410;
  g.power_limit_w = 400;
  DeviceReading m = g;
  m.uuid = "MIG-b";
  m.is_mig = true;
  m.memory_used_mib = 1000;
  m.memory_total_mib = 10000;
  m.power_w.reset();
  s.gpus = {g};
  s.instances = {m};
  auto rules = defaultAlertRules();
  auto mem = alertSubjects(rules[2], s, "");
  ASSERT_EQ(mem.size(), 2u);
  EXPECT_DOUBLE_EQ(*mem[0].value, 95.0);
  EXPECT_DOUBLE_EQ(*mem[1].value, 10.0);
  EXPECT_EQ(mem[1].labels.at("mig_uuid"), "MIG-b");
  EXPECT_EQ(mem[0].labels.count("host"), 0u);
  auto power = alertSubjects(rules[3], s, "h");
  ASSERT_EQ(power.size(), 1u) << "power is per GPU only";
  EXPECT_DOUBLE_EQ(*power[0].value, 10.0);
  EXPECT_EQ(power[0].labels.at("host"), "h");
  s.gpus[0].power_limit_w = 0;
  EXPECT_FALSE(alertSubjects(rules[3], s, "")[0].value.has_value()) << "no enforced limit: nothing to be over";
}

}  // namespace
}  // namespace sandman
