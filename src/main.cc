// sandman: one binary, daemon and admin CLI. Dispatches on the command table.
#include <cstdio>
#include <cstring>

#include "cli/commands.h"

namespace {

void usage(FILE* out) {
  std::fprintf(out, "Usage: sandman <command> [options]\n\nCommands:\n");
  for (const auto& c : sandman::commandTable()) std::fprintf(out, "  %-10s %s\n", c.name, c.help);
  std::fprintf(out, "\nRun 'sandman <command> --help' for a command's options.\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (!std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    usage(stdout);
    return 0;
  }
  for (const auto& c : sandman::commandTable()) {
    if (!std::strcmp(argv[1], c.name)) return c.run(argc - 1, argv + 1);
  }
  std::fprintf(stderr, "sandman: unknown command '%s'\n\n", argv[1]);
  usage(stderr);
  return 2;
}
