#include "mig_state.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace nvmlsim {
namespace {

using nlohmann::json;

json ciToJson(const CiState& ci) {
  return {{"id", ci.id},          {"profile_id", ci.profile_id}, {"start", ci.start},
          {"size", ci.size},      {"serial", ci.serial},         {"uuid", ci.uuid}};
}

json giToJson(const GiState& gi) {
  json cis = json::array();
  for (const auto& ci : gi.cis) cis.push_back(ciToJson(ci));
  return {{"id", gi.id},       {"profile_id", gi.profile_id}, {"start", gi.start},
          {"size", gi.size},   {"slices", gi.slices},         {"serial", gi.serial},
          {"compute_instances", cis}};
}

CiState ciFromJson(const json& j) {
  CiState ci;
  ci.id = j.at("id").get<unsigned>();
  ci.profile_id = j.at("profile_id").get<unsigned>();
  ci.start = j.at("start").get<unsigned>();
  ci.size = j.at("size").get<unsigned>();
  ci.serial = j.at("serial").get<unsigned long long>();
  ci.uuid = j.at("uuid").get<std::string>();
  return ci;
}

GiState giFromJson(const json& j) {
  GiState gi;
  gi.id = j.at("id").get<unsigned>();
  gi.profile_id = j.at("profile_id").get<unsigned>();
  gi.start = j.at("start").get<unsigned>();
  gi.size = j.at("size").get<unsigned>();
  gi.slices = j.at("slices").get<unsigned>();
  gi.serial = j.at("serial").get<unsigned long long>();
  for (const auto& c : j.at("compute_instances")) gi.cis.push_back(ciFromJson(c));
  return gi;
}

}  // namespace

StateLock::StateLock(const std::string& state_path) {
  std::string lock_path = state_path + ".lock";
  fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    errno_ = errno;
    return;
  }
  while (::flock(fd_, LOCK_EX) != 0) {
    if (errno != EINTR) {
      errno_ = errno;
      ::close(fd_);
      fd_ = -1;
      return;
    }
  }
}

StateLock::~StateLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

bool readState(const std::string& path, MigState* out, bool* exists, std::string* error) {
  *out = MigState{};
  std::ifstream in(path);
  if (!in) {
    *exists = false;
    if (errno == ENOENT) return true;
    *error = "cannot read MIG state file " + path + ": " + std::strerror(errno);
    return false;
  }
  *exists = true;
  std::stringstream buf;
  buf << in.rdbuf();
  try {
    json j = json::parse(buf.str());
    out->next_serial = j.at("next_serial").get<unsigned long long>();
    for (const auto& [uuid, g] : j.at("gpus").items()) {
      GpuMigState gpu;
      for (const auto& gi : g.at("gpu_instances")) gpu.gis.push_back(giFromJson(gi));
      out->gpus[uuid] = std::move(gpu);
    }
  } catch (const json::exception& e) {
    *error = "MIG state file " + path + " is corrupt (" + e.what() +
             "); delete it to start again from the config";
    return false;
  }
  return true;
}

bool writeState(const std::string& path, const MigState& state, std::string* error) {
  json gpus = json::object();
  for (const auto& [uuid, gpu] : state.gpus) {
    json gis = json::array();
    for (const auto& gi : gpu.gis) gis.push_back(giToJson(gi));
    gpus[uuid] = {{"gpu_instances", gis}};
  }
  json j = {{"version", 1}, {"next_serial", state.next_serial}, {"gpus", gpus}};
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream o(tmp, std::ios::trunc);
    o << j.dump(1) << '\n';
    o.flush();
    if (!o) {
      *error = "cannot write " + tmp + ": " + std::strerror(errno);
      std::remove(tmp.c_str());
      return false;
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    *error = "cannot rename " + tmp + " to " + path + ": " + std::strerror(errno);
    std::remove(tmp.c_str());
    return false;
  }
  return true;
}

}  // namespace nvmlsim
