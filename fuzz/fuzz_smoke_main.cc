// Runs the fuzz target over seeds and deterministic mutations of them, so
// the harness is built and exercised by every CTest run (g++ has no
// libFuzzer; `cmake -DSANDMAN_FUZZ=ON` with clang builds the real fuzzer).
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  std::vector<std::string> seeds = {
      R"({"user_id":"alice","ttl_minutes":60})",
      R"({"user_id":"../etc","ttl_seconds":5,"image":"img:1","ssh_public_key":"ssh-ed25519 AAAA x"})",
      R"({"ttl_minutes":30})",
      R"({"user_id":"a","mig_profile":"1g.10gb","mig_instance_uuid":null})",
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIM4tX2kvlpUAmLTph96C59d53/9xYESXzTFQhkAe3BGB me@host",
      std::string("SSH-2.0-OpenSSH_9.2\r\n\x00\x00\x03\xfc\x04\x14", 27),
      "alice", "_a-1", "", "[]", "{}", "null",
  };
  // A corpus directory (fuzz/corpus/<target>) adds its files as seeds.
  if (argc > 1) {
    for (const auto& entry : std::filesystem::directory_iterator(argv[1])) {
      std::ifstream in(entry.path(), std::ios::binary);
      seeds.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
  }
  std::mt19937 rng(1234);
  size_t runs = 0;
  for (const auto& seed : seeds) {
    for (int i = 0; i < (argc > 1 ? 300 : 2000); ++i) {
      std::string s = seed;
      int edits = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < edits; ++e) {
        size_t pos = s.empty() ? 0 : rng() % (s.size() + 1);
        switch (rng() % 3) {
          case 0: s.insert(pos, 1, static_cast<char>(rng() & 0xff)); break;
          case 1: if (pos < s.size()) s.erase(pos, 1 + rng() % 4); break;
          default: if (pos < s.size()) s[pos] = static_cast<char>(rng() & 0xff); break;
        }
      }
      LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(s.data()), s.size());
      ++runs;
    }
  }
  std::printf("fuzz smoke: %zu inputs, no crash\n", runs);
  return 0;
}
