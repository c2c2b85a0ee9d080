// `sandman gpus ...`: the host's GPUs, MIG layout and free slices, from the
// daemon's REST API.
#include <cstdio>

#include "cli/api_client.h"
#include "cli/commands.h"

namespace sandman {
namespace {

using nlohmann::json;

void printGpus(const json& body) {
  std::printf("%-3s %-28s %-42s %-5s %-11s %-6s %-7s\n", "GPU", "NAME", "UUID", "MIG", "MEM(MiB)", "TEMP", "POWER");
  for (const auto& g : body["gpus"]) {
    std::string mem = str(g, "memory_used") + "/" + str(g, "memory_total");
    std::printf("%-3s %-28s %-42s %-5s %-11s %-6s %-7s\n", str(g, "index").c_str(), str(g, "name").c_str(),
                str(g, "uuid").c_str(), g.value("mig_enabled", false) ? "on" : "off", mem.c_str(),
                str(g, "temperature").c_str(), str(g, "power_usage").c_str());
    for (const auto& m : g["mig_instances"]) {
      std::printf("    %-12s %-42s start %-2s %s\n", str(m, "profile").c_str(), str(m, "uuid").c_str(),
                  str(m["placement"], "start").c_str(),
                  m["session_id"].is_null() ? "free" : ("held by " + m["session_id"].get<std::string>()).c_str());
    }
  }
}

void printProfiles(const json& body) {
  std::printf("%-14s %-8s %-8s %-10s %s\n", "PROFILE", "COMPUTE", "MEMORY", "MiB", "FREE NOW (per GPU)");
  for (const auto& p : body["profiles"]) {
    std::string free;
    for (const auto& g : p["gpus"]) free += "gpu" + str(g, "index") + "=" + str(g, "available") + " ";
    std::printf("%-14s %-8s %-8s %-10s %s\n", str(p, "name").c_str(), str(p, "compute_slices").c_str(),
                str(p, "memory_slices").c_str(), str(p, "memory_mib").c_str(), free.c_str());
  }
}

}  // namespace

int runGpus(int argc, char** argv) {
  CLI::App app{"sandman gpus: the host's GPUs and MIG slices (talks to the daemon)", "gpus"};
  app.require_subcommand(1);
  app.fallthrough();  // --server / --token-file / -o also after the subcommand
  ClientOptions o;
  addClientOptions(app, o);
  auto* ls = app.add_subcommand("ls", "GPUs, their MIG instances and who holds them");
  auto* profiles = app.add_subcommand("profiles", "MIG profiles and how many more fit now");
  auto* available = app.add_subcommand("available", "what can be handed out right now");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  std::string path = ls->parsed() ? "/gpus" : profiles->parsed() ? "/gpus/profiles" : "/gpus/available";
  auto body = call(o, "GET", path);
  if (!body) return 1;
  if (o.output == "json" || available->parsed()) {
    std::printf("%s\n", body->dump(2).c_str());
  } else if (ls->parsed()) {
    printGpus(*body);
  } else {
    printProfiles(*body);
  }
  return 0;
}

}  // namespace sandman
