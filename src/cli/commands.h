// The command table of the one `sandman` binary: the daemon (`serve`) and
// the admin CLI that talks to it over the REST API.
#pragma once

#include <string>
#include <vector>

namespace sandman {

struct Command {
  const char* name;
  const char* help;
  int (*run)(int argc, char** argv);  // argv[0] is the command name
};

int runServe(int argc, char** argv);
int runAgent(int argc, char** argv);
int runSessions(int argc, char** argv);
int runGpus(int argc, char** argv);
int runNodes(int argc, char** argv);
int runUsers(int argc, char** argv);
int runAlerts(int argc, char** argv);
int runCost(int argc, char** argv);
int runTeams(int argc, char** argv);
int runProjects(int argc, char** argv);
int runBudgets(int argc, char** argv);
// advice_command.cc: `sandman advice` and `sandman cost forecast`.
int runAdvice(int argc, char** argv);
int runCostForecast(int argc, char** argv);
// demand_command.cc: `sandman demand` and `sandman advice layout`.
int runDemand(int argc, char** argv);
int runAdviceLayout(int argc, char** argv);
int runVersion(int argc, char** argv);

const std::vector<Command>& commandTable();

}  // namespace sandman
