#include "cli/commands.h"

#include <cstdio>

#include "common/version.h"

namespace sandman {

int runVersion(int, char**) {
  std::printf("sandman %s\n", kSandmanVersion);
  return 0;
}

const std::vector<Command>& commandTable() {
  static const std::vector<Command> table = {
      {"serve", "run the daemon: REST API, session lifecycle, TTL reaper", runServe},
      {"agent", "run the node agent (a DaemonSet on GPU nodes): per-node GPU telemetry and pod holders", runAgent},
      {"sessions", "create, list, show, extend and remove sessions (talks to the daemon)", runSessions},
      {"gpus", "list GPUs, MIG profiles and free slices (talks to the daemon)", runGpus},
      {"nodes", "GPU nodes, their status (maintenance) and MIG layout changes on a cluster (talks to the daemon)", runNodes},
      {"alerts", "list and acknowledge GPU alerts (talks to the daemon)", runAlerts},
      {"users", "register public keys for gateway logins; set a user's team and projects (talks to the daemon)",
       runUsers},
      {"teams", "list, create and remove teams that pay for sessions (talks to the daemon)", runTeams},
      {"projects", "list, create and remove projects that pay for sessions (talks to the daemon)", runProjects},
      {"budgets", "monthly budgets per user, team or project, with spend and forecast (talks to the daemon)",
       runBudgets},
      {"cost", "what GPU time cost, by user, team, project, model, profile or session (talks to the daemon)",
       runCost},
      {"demand", "create requests that asked for capacity, accepted or refused (talks to the daemon)", runDemand},
      {"advice", "advice: rightsizing (sessions that would have fit a smaller slice) and layout (static MIG; talks to "
                 "the daemon)",
       runAdvice},
      {"version", "print the version", runVersion},
  };
  return table;
}

}  // namespace sandman
