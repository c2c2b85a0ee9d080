// `sandman cost`, `sandman teams`, `sandman projects`: what GPU time cost,
// per user/team/project/model/profile/session, and who pays, from the
// daemon's REST API.
#include <cstdio>

#include "cli/api_client.h"
#include "cli/commands.h"

namespace sandman {
namespace {

using nlohmann::json;

std::string money(const json& v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f", v.is_number() ? v.get<double>() : 0.0);
  return buf;
}

std::string hours(const json& v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f", v.is_number() ? v.get<double>() : 0.0);
  return buf;
}

std::string groupKey(const std::string& group_by) {
  if (group_by == "user") return "user_id";
  if (group_by == "session") return "session_id";
  return group_by;
}

// Names of teams and projects: one positional argument, checked by the daemon.
int listNames(const ClientOptions& o, const std::string& path, bool with_team) {
  auto body = call(o, "GET", path);
  if (!body) return 1;
  if (o.output == "json") {
    std::printf("%s\n", body->dump(2).c_str());
    return 0;
  }
  std::printf(with_team ? "%-32s %-24s %s\n" : "%-32s %s\n", "NAME", with_team ? "TEAM" : "CREATED", "CREATED");
  for (const auto& r : *body) {
    if (with_team) {
      std::printf("%-32s %-24s %s\n", str(r, "name").c_str(), str(r, "team").c_str(), str(r, "created_at").c_str());
    } else {
      std::printf("%-32s %s\n", str(r, "name").c_str(), str(r, "created_at").c_str());
    }
  }
  return 0;
}

}  // namespace

int runCost(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "forecast") return runCostForecast(argc - 1, argv + 1);
  CLI::App app{"sandman cost: what GPU time cost, from the ledger (talks to the daemon); `sandman cost forecast --help`: the next 7 or 30 days", "cost"};
  ClientOptions o;
  addClientOptions(app, o);
  std::string group_by = "team", step = "day", from, to, user, team, project;
  bool csv = false;
  app.add_option("--group-by", group_by, "user, team, project, gpu_model, profile or session")
      ->capture_default_str()
      ->check(CLI::IsMember({"user", "team", "project", "gpu_model", "profile", "session"}));
  app.add_option("--step", step, "day, week (Monday, UTC) or month")->capture_default_str()->check(
      CLI::IsMember({"day", "week", "month"}));
  app.add_option("--from", from, "start, RFC 3339 or YYYY-MM-DD (default: 30 days before --to)");
  app.add_option("--to", to, "end, RFC 3339 or YYYY-MM-DD (default: now)");
  app.add_option("--user", user, "only this user's sessions");
  app.add_option("--team", team, "only this team's sessions");
  app.add_option("--project", project, "only this project's sessions");
  app.add_flag("--csv", csv, "print the daemon's CSV (RFC 4180)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  std::string path = withParam(withParam("/cost", "group_by", group_by), "step", step);
  if (!from.empty()) path = withParam(path, "from", from);
  if (!to.empty()) path = withParam(path, "to", to);
  if (!user.empty()) path = withParam(path, "user", user);
  if (!team.empty()) path = withParam(path, "team", team);
  if (!project.empty()) path = withParam(path, "project", project);
  auto body = call(o, "GET", path);
  if (!body) return 1;
  if (o.output == "json") {
    std::printf("%s\n", body->dump(2).c_str());
    return 0;
  }
  const std::string key = groupKey(group_by);
  if (csv) {
    std::printf("bucket_start,%s,cost_usd,idle_cost_usd,held_hours,idle_hours\n", key.c_str());
    for (const auto& r : (*body)["rows"]) {
      std::string k = str(r, key.c_str());
      std::string quoted = k.find_first_of(",\"") == std::string::npos ? k : "\"" + k + "\"";
      std::printf("%s,%s,%.6f,%.6f,%.4f,%.4f\n", str(r, "bucket_start").c_str(), quoted.c_str(),
                  r["cost_usd"].get<double>(), r["idle_cost_usd"].get<double>(), r["held_hours"].get<double>(),
                  r["idle_hours"].get<double>());
    }
    return 0;
  }
  std::printf("%-11s %-28s %12s %12s %10s %10s\n", step == "day" ? "DAY" : step == "week" ? "WEEK" : "MONTH",
              key == "user_id" ? "USER" : key == "session_id" ? "SESSION" : key == "gpu_model" ? "GPU MODEL"
                                                                         : key == "profile" ? "PROFILE"
                                                                         : key == "team" ? "TEAM" : "PROJECT",
              "COST USD", "IDLE USD", "HOURS", "IDLE H");
  for (const auto& r : (*body)["rows"]) {
    std::string k = str(r, key.c_str());
    std::printf("%-11s %-28s %12s %12s %10s %10s\n", str(r, "bucket_start").substr(0, 10).c_str(),
                k.empty() ? "(none)" : k.c_str(), money(r["cost_usd"]).c_str(), money(r["idle_cost_usd"]).c_str(),
                hours(r["held_hours"]).c_str(), hours(r["idle_hours"]).c_str());
  }
  std::printf("%-11s %-28s %12s %12s\n", "TOTAL", "", money((*body)["total_usd"]).c_str(),
              money((*body)["idle_total_usd"]).c_str());
  if ((*body)["running_sessions"].get<int>() > 0) {
    std::printf("(includes %d running session(s), accrued to now)\n", (*body)["running_sessions"].get<int>());
  }
  return 0;
}

int runTeams(int argc, char** argv) {
  CLI::App app{"sandman teams: teams that pay for sessions (talks to the daemon)", "teams"};
  app.require_subcommand(1);
  app.fallthrough();
  ClientOptions o;
  addClientOptions(app, o);
  std::string name;
  auto* ls = app.add_subcommand("ls", "list teams");
  auto* add = app.add_subcommand("add", "create a team");
  add->add_option("name", name, "team name (lower-case letters, digits, . _ -)")->required();
  auto* rm = app.add_subcommand("rm", "remove a team");
  rm->add_option("name", name, "team name")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (ls->parsed()) return listNames(o, "/teams", false);
  auto out = add->parsed() ? call(o, "POST", "/teams", json{{"name", name}}.dump())
                           : call(o, "DELETE", "/teams/" + name);
  if (!out) return 1;
  std::printf("%s\n", out->dump(2).c_str());
  return 0;
}

int runProjects(int argc, char** argv) {
  CLI::App app{"sandman projects: projects that pay for sessions (talks to the daemon)", "projects"};
  app.require_subcommand(1);
  app.fallthrough();
  ClientOptions o;
  addClientOptions(app, o);
  std::string name, team;
  auto* ls = app.add_subcommand("ls", "list projects");
  auto* add = app.add_subcommand("add", "create a project");
  add->add_option("name", name, "project name (lower-case letters, digits, . _ -)")->required();
  add->add_option("--team", team, "the team it belongs to");
  auto* rm = app.add_subcommand("rm", "remove a project");
  rm->add_option("name", name, "project name")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (ls->parsed()) return listNames(o, "/projects", true);
  json body = {{"name", name}};
  if (!team.empty()) body["team"] = team;
  auto out = add->parsed() ? call(o, "POST", "/projects", body.dump()) : call(o, "DELETE", "/projects/" + name);
  if (!out) return 1;
  std::printf("%s\n", out->dump(2).c_str());
  return 0;
}

}  // namespace sandman

namespace sandman {

int runBudgets(int argc, char** argv) {
  CLI::App app{"sandman budgets: monthly budgets per user, team or project (talks to the daemon)", "budgets"};
  app.require_subcommand(1);
  app.fallthrough();
  ClientOptions o;
  addClientOptions(app, o);
  std::string scope, name;
  double usd = 0;
  int64_t id = 0;
  auto* ls = app.add_subcommand("ls", "budgets with this month's spend and forecast");
  auto* set = app.add_subcommand("set", "set the monthly limit of a user's, team's or project's budget");
  set->add_option("scope", scope, "user, team or project")->required()->check(CLI::IsMember({"user", "team", "project"}));
  set->add_option("name", name, "its name")->required();
  set->add_option("usd_per_month", usd, "limit in USD per calendar month (UTC)")->required();
  auto* rm = app.add_subcommand("rm", "remove a budget");
  rm->add_option("id", id, "budget id (from ls)")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  std::optional<json> out;
  if (ls->parsed()) {
    out = call(o, "GET", "/budgets");
  } else if (set->parsed()) {
    out = call(o, "PUT", "/budgets", json{{"scope", scope}, {"name", name}, {"usd_per_month", usd}}.dump());
  } else {
    out = call(o, "DELETE", "/budgets/" + std::to_string(id));
  }
  if (!out) return 1;
  if (o.output == "json" || !ls->parsed()) {
    std::printf("%s\n", out->dump(2).c_str());
    return 0;
  }
  std::printf("%-5s %-32s %12s %12s %12s %7s\n", "ID", "BUDGET", "LIMIT USD", "USED USD", "FORECAST", "USED %");
  for (const auto& b : (*out)["budgets"]) {
    std::printf("%-5s %-32s %12s %12s %12s %6.1f%%\n", str(b, "id").c_str(), str(b, "budget").c_str(),
                money(b["usd_per_month"]).c_str(), money(b["used_usd"]).c_str(), money(b["forecast_usd"]).c_str(),
                100 * b["used_ratio"].get<double>());
  }
  std::printf("enforcement: %s\n", str(*out, "enforcement").c_str());
  return 0;
}

}  // namespace sandman
