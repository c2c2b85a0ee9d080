// `sandman advice rightsizing` and `sandman cost forecast`: which sessions
// would have fit a smaller GPU slice (with the saving), and what the coming
// days will cost, from the daemon's REST API.
#include <cstdio>
#include <cstring>

#include "cli/api_client.h"
#include "cli/commands.h"

namespace sandman {
namespace {

using nlohmann::json;

double num(const json& j, const char* key) {
  return j.contains(key) && j[key].is_number() ? j[key].get<double>() : 0.0;
}

std::string maybe(const json& j, const char* key, const char* fmt) {
  if (!j.contains(key) || !j[key].is_number()) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, j[key].get<double>());
  return buf;
}

int runAdviceRightsizing(int argc, char** argv) {
  CLI::App app{"sandman advice rightsizing: sessions whose peak GPU memory and utilisation would have fit a "
               "smaller MIG profile (or a slice instead of a whole GPU), with the saving at the prices in force. "
               "Rule: peak memory x 1.2 must fit the profile's memory and peak utilisation x slices held x 1.2 its "
               "compute slices (memory alone where NVML has no utilisation: MIG instances); sessions without telemetry "
               "are listed as unknown",
               "rightsizing"};
  ClientOptions o;
  addClientOptions(app, o);
  std::string from, to;
  bool all = false;
  int limit = 500;
  app.add_option("--from", from, "window start, RFC 3339 or YYYY-MM-DD (default: 30 days before --to)");
  app.add_option("--to", to, "window end, RFC 3339 or YYYY-MM-DD (default: now)");
  app.add_flag("--all", all, "also list the sessions that are right-sized");
  app.add_option("--limit", limit, "at most this many sessions")->capture_default_str()->check(CLI::Range(1, 10000));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  std::string path = withParam("/advice/rightsizing", "limit", std::to_string(limit));
  if (!from.empty()) path = withParam(path, "from", from);
  if (!to.empty()) path = withParam(path, "to", to);
  if (all) path = withParam(path, "all", "true");
  auto body = call(o, "GET", path);
  if (!body) return 1;
  if (o.output == "json") {
    std::printf("%s\n", body->dump(2).c_str());
    return 0;
  }
  std::printf("%-20s %-12s %-16s %-10s %-11s %9s %6s %-11s %10s %10s\n", "SESSION", "USER", "GPU MODEL", "PROFILE",
              "VERDICT", "PEAK MiB", "UTIL%", "SUGGESTED", "COST USD", "SAVING USD");
  for (const auto& r : (*body)["sessions"]) {
    const std::string suggested = r["suggested_profile"].is_string() ? r["suggested_profile"].get<std::string>() : "-";
    std::printf("%-20s %-12s %-16s %-10s %-11s %9s %6s %-11s %10.4f %10.4f\n", str(r, "session_id").c_str(),
                str(r, "user_id").c_str(), str(r, "gpu_model").c_str(), str(r, "profile").c_str(),
                str(r, "verdict").c_str(), maybe(r, "peak_memory_mib", "%.0f").c_str(),
                maybe(r, "peak_utilization", "%.0f").c_str(), suggested.c_str(), num(r, "cost_usd"),
                num(r, "saving_usd"));
  }
  const json& s = (*body)["summary"];
  std::printf("%d session(s): %d fit a smaller profile, %d right-sized, %d unknown (no telemetry); saving %.4f USD\n",
              s["sessions"].get<int>(), s["smaller"].get<int>(), s["right_sized"].get<int>(),
              s["unknown"].get<int>(), num(s, "saving_usd"));
  return 0;
}

}  // namespace

int runAdvice(int argc, char** argv) {
  // One subcommand per kind of advice, each with its own options; a new kind
  // is one more line here.
  if (argc > 1 && std::strcmp(argv[1], "rightsizing") == 0) return runAdviceRightsizing(argc - 1, argv + 1);
  if (argc > 1 && std::strcmp(argv[1], "layout") == 0) return runAdviceLayout(argc - 1, argv + 1);
  std::fprintf(argc > 1 && std::strcmp(argv[1], "--help") != 0 && std::strcmp(argv[1], "-h") != 0 ? stderr : stdout,
               "usage: sandman advice rightsizing [--from T] [--to T] [--all] [--limit N]\n"
               "       sandman advice layout [--days N]\n"
               "  rightsizing  sessions whose peak would have fit a smaller MIG profile, with the saving\n"
               "  layout       the MIG layout that would have served the most of the recorded demand (static MIG)\n");
  return argc > 1 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) ? 0 : 2;
}

int runCostForecast(int argc, char** argv) {
  CLI::App app{"sandman cost forecast: slice-hours and cost per profile or team for the next 7 or 30 days, from "
               "the ledger's last 8 weeks (hour-of-week profile x a weekly level with a linear trend)",
               "forecast"};
  ClientOptions o;
  addClientOptions(app, o);
  std::string horizon = "7d", group_by = "profile";
  bool daily = false;
  app.add_option("--horizon", horizon, "7d or 30d")->capture_default_str()->check(CLI::IsMember({"7d", "30d"}));
  app.add_option("--group-by", group_by, "profile or team")->capture_default_str()->check(
      CLI::IsMember({"profile", "team"}));
  app.add_flag("--daily", daily, "one line per group and day");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  auto body = call(o, "GET", withParam(withParam("/cost/forecast", "horizon", horizon), "group_by", group_by));
  if (!body) return 1;
  if (o.output == "json") {
    std::printf("%s\n", body->dump(2).c_str());
    return 0;
  }
  std::printf("forecast %s .. %s (%s), fitted on history from %s\n", str(*body, "from").c_str(),
              str(*body, "to").c_str(), horizon.c_str(), str(*body, "history_from").c_str());
  const char* head = group_by == "team" ? "TEAM" : "PROFILE";
  if (daily) {
    std::printf("%-11s %-24s %12s %12s\n", "DAY", head, "SLICE H", "COST USD");
  } else {
    std::printf("%-24s %12s %12s %12s\n", head, "SLICE H", "COST USD", "USD/SLICE H");
  }
  for (const auto& g : (*body)["groups"]) {
    std::string k = str(g, group_by.c_str());
    if (k.empty()) k = "(none)";
    if (daily) {
      for (const auto& d : g["days"]) {
        std::printf("%-11s %-24s %12.2f %12.2f\n", str(d, "day").substr(0, 10).c_str(), k.c_str(),
                    num(d, "slice_hours"), num(d, "cost_usd"));
      }
    } else {
      std::printf("%-24s %12.2f %12.2f %12.4f\n", k.c_str(), num(g, "slice_hours"), num(g, "cost_usd"),
                  num(g, "usd_per_slice_hour"));
    }
  }
  const json& t = (*body)["total"];
  std::printf("%-24s %12.2f %12.2f\n", "TOTAL", num(t, "slice_hours"), num(t, "cost_usd"));
  return 0;
}

}  // namespace sandman
