// `sandman nodes ...`: the cluster's GPU nodes (Kubernetes backend) from the
// daemon's REST API, and MIG layout changes through the GPU operator:
// propose a layout, approve it (admins), show how it goes, release a node;
// and a node's status (active, maintenance, drained) on either backend.
#include <cstdio>

#include "cli/api_client.h"
#include "cli/commands.h"

namespace sandman {
namespace {

using nlohmann::json;

std::string shortResource(const std::string& r) {
  const std::string prefix = "nvidia.com/";
  return r.rfind(prefix, 0) == 0 ? r.substr(prefix.size()) : r;
}

// The Docker backend's one node, the local host.
void printLocalNodes(const json& body) {
  std::printf("%-24s %-12s %-12s %5s %5s %9s  %s\n", "NODE", "CLUSTER", "STATUS", "GPUS", "MIG", "SESSIONS", "UPDATED");
  for (const auto& n : body["nodes"]) {
    std::printf("%-24s %-12s %-12s %5s %5s %9s  %s\n", str(n, "name").c_str(), str(n, "cluster").c_str(),
                str(n, "status").c_str(), str(n, "gpu_count").c_str(), str(n, "mig_instances").c_str(),
                str(n, "running_sessions").c_str(), n.value("updated_at", json()).is_null() ? "-" : str(n, "updated_at").c_str());
    if (n.contains("refusal") && !n["refusal"].is_null()) std::printf("  takes no sessions: %s\n", str(n, "refusal").c_str());
  }
}

void printStatus(const json& n) {
  std::printf("node %s: %s%s; %s session(s) still running\n", str(n, "name").c_str(), str(n, "status").c_str(),
              n.value("status_reason", json()).is_null() ? "" : (" (" + str(n, "status_reason") + ")").c_str(),
              str(n, "running_sessions").c_str());
  if (n.contains("still_running")) {
    for (const auto& s : n["still_running"]) std::printf("  %s\n", str(s, "id").c_str());
  }
}

// One row per node and GPU resource; the node's columns on its first row only.
void printNodes(const json& body) {
  if (body.value("backend", std::string()) == "docker") return printLocalNodes(body);
  std::printf("%-22s %-28s %-6s %-14s %4s %5s %4s %4s  %-5s %-8s %s\n", "NODE", "PRODUCT", "MIG", "RESOURCE", "CAP",
              "ALLOC", "USED", "FREE", "READY", "CORDON", "MIG CONFIG (STATE)");
  for (const auto& n : body["nodes"]) {
    std::string cordon = n.value("cordoned", false) ? "yes" : n["held_by_sandman"].is_null() ? "no" : "sandman";
    std::string mig = n["mig_config"].is_null() ? "-" : str(n, "mig_config") + " (" + str(n, "mig_config_state") + ")";
    bool first = true;
    auto row = [&](const json& r) {
      std::printf("%-22s %-28s %-6s %-14s %4s %5s %4s %4s  %-5s %-8s %s\n", first ? str(n, "name").c_str() : "",
                  first ? str(n, "product").c_str() : "", first ? str(n, "mig_strategy").c_str() : "",
                  r.is_null() ? "-" : shortResource(str(r, "resource")).c_str(),
                  r.is_null() ? "-" : str(r, "capacity").c_str(), r.is_null() ? "-" : str(r, "allocatable").c_str(),
                  r.is_null() ? "-" : str(r, "in_use").c_str(), r.is_null() ? "-" : str(r, "free").c_str(),
                  first ? (n.value("ready", false) ? "yes" : "no") : "", first ? cordon.c_str() : "",
                  first ? mig.c_str() : "");
      first = false;
    };
    if (n["resources"].empty()) row(json());
    for (const auto& r : n["resources"]) row(r);
    if (!n["refusal"].is_null()) std::printf("%-22s   takes no sessions: %s\n", "", str(n, "refusal").c_str());
  }
  std::printf("%s nodes, %s GPUs; USED counts this daemon's sessions only\n", str(body, "count").c_str(),
              str(body, "gpus").c_str());
  if (body.contains("fits_now")) {
    std::printf("fits now:");
    for (const auto& f : body["fits_now"]) {
      std::printf(" %s=%s", shortResource(str(f, "resource")).c_str(), str(f, "fits").c_str());
    }
    std::printf("\n");
  }
}

void printProposals(const json& body) {
  if (body.contains("node")) {
    std::printf("node %s: mig.config %s (%s)%s\n", str(body, "node").c_str(), str(body, "mig_config").c_str(),
                str(body, "mig_config_state").c_str(),
                body["held_by_sandman"].is_null() ? "" : ("; held: " + str(body, "held_by_sandman")).c_str());
  }
  std::printf("%-5s %-20s %-18s %-11s %-24s %s\n", "ID", "NODE", "CONFIG", "STATE", "UPDATED", "MESSAGE");
  for (const auto& p : body["proposals"]) {
    std::printf("%-5s %-20s %-18s %-11s %-24s %s\n", str(p, "id").c_str(), str(p, "node").c_str(),
                str(p, "config").c_str(), str(p, "state").c_str(), str(p, "updated_at").c_str(),
                str(p, "message").c_str());
  }
}

void printProposal(const json& p) {
  std::printf("proposal %s: node %s -> %s: %s (%s)\n", str(p, "id").c_str(), str(p, "node").c_str(),
              str(p, "config").c_str(), str(p, "state").c_str(), str(p, "message").c_str());
}

}  // namespace

int runNodes(int argc, char** argv) {
  CLI::App app{"sandman nodes: GPU nodes, their status, and MIG layouts on a cluster (talks to the daemon)",
               "nodes"};
  app.require_subcommand(1);
  app.fallthrough();
  ClientOptions o;
  addClientOptions(app, o);
  auto* ls = app.add_subcommand("ls", "GPU nodes: model, MIG strategy, capacity/allocatable/in use per resource, "
                                      "Ready, cordon, mig.config and its state");
  std::string node, config, by = "cli";
  auto* show = app.add_subcommand("show", "one node in detail (JSON)");
  show->add_option("node", node, "node name")->required();
  std::string status, reason;
  auto* set_status = app.add_subcommand(
      "status", "set a node's status: active, maintenance (no new sessions; running ones continue) or drained "
                "(maintenance that also lists what still runs until it is empty)");
  set_status->add_option("node", node, "node name")->required();
  set_status->add_option("status", status, "active | maintenance | drained")
      ->required()
      ->check(CLI::IsMember({"active", "maintenance", "drained"}));
  set_status->add_option("--reason", reason, "why, shown to whoever is refused");
  set_status->add_option("--by", by, "who sets it")->capture_default_str();
  auto* layout = app.add_subcommand("mig-layout", "MIG layout changes through the GPU operator's nvidia.com/mig.config");
  layout->require_subcommand(1);
  auto* propose = layout->add_subcommand("propose", "propose a layout for a node (a name from the GPU operator's "
                                                    "MIG config, e.g. all-1g.10gb)");
  propose->add_option("node", node, "node name")->required();
  propose->add_option("config", config, "the nvidia.com/mig.config value")->required();
  propose->add_option("--by", by, "who proposes it")->capture_default_str();
  auto* approve = layout->add_subcommand(
      "approve", "approve the node's proposal: hold the node for new sessions, refuse while sessions run there, "
                 "set the label and follow nvidia.com/mig.config.state");
  approve->add_option("node", node, "node name")->required();
  approve->add_option("--by", by, "who approves it")->capture_default_str();
  auto* layout_show = layout->add_subcommand("show", "a node's proposals and how they went (no node: every node's)");
  layout_show->add_option("node", node, "node name");
  auto* release = layout->add_subcommand("release", "withdraw the node's unapproved proposal, or let go of a node "
                                                    "whose change failed");
  release->add_option("node", node, "node name")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  std::optional<json> body;
  const std::string base = "/gpu-nodes/" + node;
  if (ls->parsed()) body = call(o, "GET", "/gpu-nodes?limit=1000");
  else if (show->parsed()) body = call(o, "GET", base);
  else if (set_status->parsed()) {
    json b = {{"status", status}, {"by", by}};
    if (!reason.empty()) b["reason"] = reason;
    body = call(o, "PATCH", base + "/status", b.dump());
  }
  else if (propose->parsed()) body = call(o, "POST", base + "/mig-layout", json{{"config", config}, {"by", by}}.dump());
  else if (approve->parsed()) body = call(o, "POST", base + "/mig-layout/approve", json{{"by", by}}.dump());
  else if (release->parsed()) body = call(o, "DELETE", base + "/mig-layout");
  else body = call(o, "GET", node.empty() ? "/mig-layouts" : base + "/mig-layout");
  if (!body) return 1;
  if (o.output == "json" || show->parsed()) {
    std::printf("%s\n", body->dump(2).c_str());
  } else if (ls->parsed()) {
    printNodes(*body);
  } else if (set_status->parsed()) {
    printStatus(*body);
  } else if (layout_show->parsed()) {
    printProposals(*body);
  } else {
    printProposal(*body);
  }
  return 0;
}

}  // namespace sandman
