#include "agent/proc_pods.h"

#include <fstream>
#include <sstream>

namespace sandman {
namespace {

bool isUid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// One path segment: "pod<uid>" (cgroupfs) or "kubepods-<qos>-pod<uid_with_underscores>.slice" (systemd).
std::string uidOfSegment(std::string_view seg) {
  std::string_view cand;
  if (seg.rfind("pod", 0) == 0) {
    cand = seg.substr(3);
  } else if (size_t at = seg.find("-pod"); at != std::string_view::npos && seg.rfind("kubepods", 0) == 0) {
    cand = seg.substr(at + 4);
    if (cand.size() > 6 && cand.substr(cand.size() - 6) == ".slice") cand.remove_suffix(6);
  } else {
    return "";
  }
  std::string uid(cand);
  for (auto& c : uid) {
    if (c == '_') c = '-';
  }
  return isUid(uid) ? uid : "";
}

}  // namespace

std::string podUidFromCgroup(std::string_view text) {
  while (!text.empty()) {
    size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
    // hierarchy-ID:controllers:path; the path may hold ':' itself.
    size_t c1 = line.find(':');
    size_t c2 = c1 == std::string_view::npos ? c1 : line.find(':', c1 + 1);
    if (c2 == std::string_view::npos) continue;
    std::string_view path = line.substr(c2 + 1);
    if (path.find("kubepods") == std::string_view::npos) continue;
    while (!path.empty()) {
      size_t slash = path.find('/');
      std::string_view seg = path.substr(0, slash);
      path = slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
      if (std::string uid = uidOfSegment(seg); !uid.empty()) return uid;
    }
  }
  return "";
}

std::string ProcPods::podOf(unsigned pid) const {
  std::ifstream in(root_ + "/" + std::to_string(pid) + "/cgroup");
  if (!in) return "";
  std::stringstream text;
  text << in.rdbuf();
  return podUidFromCgroup(text.str());
}

void ProcPods::annotate(TelemetrySnapshot& snap, const std::string& node) const {
  for (auto* list : {&snap.gpus, &snap.instances}) {
    for (auto& d : *list) {
      d.node = node;
      d.pod_uid.clear();
      for (unsigned pid : d.pids) {
        d.pod_uid = podOf(pid);
        if (!d.pod_uid.empty()) break;
      }
    }
  }
}

}  // namespace sandman
