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

// A number, or "-" where NVML could not tell (null).
std::string num(const json& j, const char* key, const char* unit) {
  if (!j.contains(key) || j[key].is_null()) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f%s", j[key].get<double>(), unit);
  return buf;
}

// The latest telemetry sample: each GPU, then its MIG instances, with holders.
void printTop(const json& body) {
  if (!body.value("backend_ok", true)) {
    std::printf("NVML error: %s\n", str(body, "backend_error").c_str());
  }
  std::printf("sample at %s\n", str(body, "taken_at").c_str());
  std::printf("%-4s %-44s %-10s %-5s %-6s %-9s %-15s %-5s %s\n", "GPU", "DEVICE", "PROFILE", "UTIL", "TEMP",
              "POWER", "MEM(MiB)", "PROCS", "HELD BY");
  auto row = [](const json& d, const std::string& gpu, const std::string& profile) {
    std::string mem = str(d, "memory_used_mib") + "/" + str(d, "memory_total_mib");
    std::string held = d["session_id"].is_null() ? "" : str(d, "user_id") + " (" + str(d, "session_id") + ")";
    std::printf("%-4s %-44s %-10s %-5s %-6s %-9s %-15s %-5s %s\n", gpu.c_str(), str(d, "uuid").c_str(),
                profile.c_str(), num(d, "utilization_pct", "%").c_str(), num(d, "temperature_c", "C").c_str(),
                num(d, "power_w", "W").c_str(), mem.c_str(), str(d, "compute_processes").c_str(), held.c_str());
  };
  for (const auto& g : body["gpus"]) {
    row(g, str(g, "gpu_index"), g.value("mig_enabled", false) ? "mig" : "whole");
    for (const auto& m : body["instances"]) {
      if (m["gpu_uuid"] == g["uuid"]) row(m, "", str(m, "profile"));
    }
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
  auto* top = app.add_subcommand("top", "the latest telemetry sample: utilisation, temperature, power, who holds what");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  std::string path = ls->parsed()         ? "/gpus"
                     : profiles->parsed() ? "/gpus/profiles"
                     : top->parsed()      ? "/metrics/realtime"
                                          : "/gpus/available";
  auto body = call(o, "GET", path);
  if (!body) return 1;
  if (o.output == "json" || available->parsed()) {
    std::printf("%s\n", body->dump(2).c_str());
  } else if (ls->parsed()) {
    printGpus(*body);
  } else if (top->parsed()) {
    printTop(*body);
  } else {
    printProfiles(*body);
  }
  return 0;
}

}  // namespace sandman
