// `sandman demand` and `sandman advice layout`: what was asked for and what
// became of it, and the MIG layout that demand says a static host should
// have, from the daemon's REST API.
#include <cstdio>

#include "cli/api_client.h"
#include "cli/commands.h"

namespace sandman {
namespace {

using nlohmann::json;

std::string layoutText(const json& profiles) {
  std::string out;
  for (const auto& p : profiles) out += (out.empty() ? "" : " ") + p.get<std::string>();
  return out.empty() ? "(none)" : out;
}

double num(const json& j, const char* key) { return j.contains(key) && j[key].is_number() ? j[key].get<double>() : 0; }

}  // namespace

int runDemand(int argc, char** argv) {
  CLI::App app{"sandman demand: every create request that asked for capacity and what became of it (talks to the daemon)",
               "demand"};
  app.fallthrough();
  ClientOptions o;
  addClientOptions(app, o);
  std::string from, to, outcome;
  PageOptions page;
  app.add_option("--from", from, "Only requests at or after this time (RFC 3339 or unix seconds)");
  app.add_option("--to", to, "Only requests before this time (RFC 3339 or unix seconds)");
  app.add_option("--outcome", outcome, "accepted, refused_capacity, refused_budget or queued")
      ->check(CLI::IsMember({"accepted", "refused_capacity", "refused_budget", "queued"}));
  addPageOptions(&app, page);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  std::string path = "/demand";
  if (!from.empty()) path = withParam(path, "from", from);
  if (!to.empty()) path = withParam(path, "to", to);
  if (!outcome.empty()) path = withParam(path, "outcome", outcome);
  auto rows = listRows(o, path, page);
  if (!rows) return 1;
  if (o.output == "json") {
    std::printf("%s\n", rows->dump(2).c_str());
    return 0;
  }
  std::printf("%-24s %-16s %-12s %-18s %-17s %-14s %s\n", "AT", "USER", "TEAM", "ASKED", "OUTCOME", "GOT", "SESSION");
  for (const auto& r : *rows) {
    std::string asked = str(r, "mig_profile");
    if (r["gpu_memory_gb"].is_number()) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%gGB %s", r["gpu_memory_gb"].get<double>(), str(r, "workload").c_str());
      asked = buf;
    } else if (asked == "-") {
      asked = "(default)";
    }
    std::printf("%-24s %-16s %-12s %-18s %-17s %-14s %s\n", str(r, "at").c_str(), str(r, "user_id").c_str(),
                str(r, "team").c_str(), asked.c_str(), str(r, "outcome").c_str(), str(r, "granted_profile").c_str(),
                str(r, "session_id").c_str());
  }
  return 0;
}

int runAdviceLayout(int argc, char** argv) {
  CLI::App app{"sandman advice layout: the MIG layout that would have served the most slice-hours of the last days' "
               "demand, refused requests included (static MIG hosts; talks to the daemon)",
               "layout"};
  ClientOptions o;
  addClientOptions(app, o);
  int days = 30;
  app.add_option("--days", days, "How many days of demand to replay")->capture_default_str()->check(CLI::Range(1, 366));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  auto body = call(o, "GET", withParam("/advice/layout", "days", std::to_string(days)));
  if (!body) return 1;
  if (o.output == "json") {
    std::printf("%s\n", body->dump(2).c_str());
    return 0;
  }
  const json& cur = (*body)["current"];
  const json& pro = (*body)["proposed"];
  std::printf("%-4s %-28s %-40s %s\n", "GPU", "MODEL", "CURRENT", "PROPOSED");
  for (size_t i = 0; i < cur["gpus"].size(); ++i) {
    const json& c = cur["gpus"][i];
    const json& p = i < pro["gpus"].size() ? pro["gpus"][i] : c;
    std::printf("%-4d %-28s %-40s %s\n", c["gpu_index"].get<int>(), str(c, "model").c_str(),
                layoutText(c["profiles"]).c_str(), layoutText(p["profiles"]).c_str());
  }
  const json& gain = (*body)["gain"];
  std::printf("\nreplayed %d requests of %d days: current serves %.2f slice-hours (%d requests), proposed %.2f (%d)\n",
              cur["requests"].get<int>(), days, num(cur, "served_slice_hours"), cur["requests_served"].get<int>(),
              num(pro, "served_slice_hours"), pro["requests_served"].get<int>());
  if ((*body)["change"].get<bool>()) {
    std::printf("gain: %+.2f slice-hours", num(gain, "served_slice_hours"));
    if (gain["percent"].is_number()) std::printf(" (%+.1f%%)", gain["percent"].get<double>());
    std::printf(", %+d requests served\n", gain["requests_served"].get<int>());
  } else {
    std::printf("no candidate layout serves more than the current one: keep it\n");
  }
  return 0;
}

}  // namespace sandman
