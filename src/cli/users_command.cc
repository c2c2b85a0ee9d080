// `sandman users keys ...`: public keys registered for a user, valid for
// gateway logins to any of the user's sessions.
#include <cstdio>
#include <fstream>

#include "cli/api_client.h"
#include "cli/commands.h"

namespace sandman {

using nlohmann::json;

int runUsers(int argc, char** argv) {
  CLI::App app{"sandman users: per-user settings: gateway keys, team and projects (talks to the daemon)", "users"};
  app.require_subcommand(1);
  app.fallthrough();
  ClientOptions o;
  addClientOptions(app, o);
  auto* keys = app.add_subcommand("keys", "public keys that may log in through the gateway");
  keys->require_subcommand(1);
  keys->fallthrough();
  std::string user, file;
  int64_t id = 0;
  auto* add = keys->add_subcommand("add", "register a public key (a .pub file) for a user");
  add->add_option("--user", user, "User id")->required();
  add->add_option("file", file, "Public key file, e.g. ~/.ssh/id_ed25519.pub")->required();
  auto* ls = keys->add_subcommand("ls", "list a user's keys");
  ls->add_option("--user", user, "User id")->required();
  PageOptions page;
  addPageOptions(ls, page);
  auto* rm = keys->add_subcommand("rm", "remove one of a user's keys");
  rm->add_option("--user", user, "User id")->required();
  rm->add_option("id", id, "Key id (from ls)")->required();
  std::string team;
  std::vector<std::string> projects;
  auto* set = app.add_subcommand("set", "set who pays for a user's sessions: team and projects (first: default)");
  set->add_option("user", user, "User id")->required();
  set->add_option("--team", team, "team (\"\" for none)");
  set->add_option("--project", projects, "a project (repeat; the first is the default payer)");
  auto* show = app.add_subcommand("show", "a user's team and projects");
  show->add_option("user", user, "User id")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  std::optional<json> out;
  if (set->parsed() || show->parsed()) {
    if (set->parsed()) {
      json body = json::object();
      if (set->count("--team") > 0) body["team"] = team;
      if (set->count("--project") > 0) body["projects"] = projects;
      out = call(o, "PUT", "/users/" + user, body.dump());
    } else {
      out = call(o, "GET", "/users/" + user);
    }
    if (!out) return 1;
    std::printf("%s\n", out->dump(2).c_str());
    return 0;
  }
  if (add->parsed()) {
    std::ifstream in(file);
    std::string line;
    if (!in || !std::getline(in, line)) {
      std::fprintf(stderr, "sandman: cannot read a public key from %s\n", file.c_str());
      return 1;
    }
    out = call(o, "PUT", "/users/" + user + "/keys", json{{"public_key", line}}.dump());
  } else if (ls->parsed()) {
    out = listRows(o, "/users/" + user + "/keys", page);
  } else {
    out = call(o, "DELETE", "/users/" + user + "/keys/" + std::to_string(id));
  }
  if (!out) return 1;
  if (o.output == "json" || rm->parsed()) {
    std::printf("%s\n", out->dump(2).c_str());
  } else {
    json list = out->is_array() ? *out : json::array({*out});
    std::printf("%-5s %-50s %s\n", "ID", "FINGERPRINT", "KEY");
    for (const auto& k : list) {
      std::printf("%-5s %-50s %.60s\n", str(k, "id").c_str(), str(k, "fingerprint").c_str(),
                  str(k, "public_key").c_str());
    }
  }
  return 0;
}

}  // namespace sandman
