#include "model/image_name.h"

namespace sandman {

std::string normalizeImageName(const std::string& image) {
  if (image.find('@') != std::string::npos) return image;
  size_t last_slash = image.rfind('/');
  size_t colon = image.rfind(':');
  bool has_tag = colon != std::string::npos && (last_slash == std::string::npos || colon > last_slash);
  return has_tag ? image : image + ":latest";
}

Status checkImageAllowed(const std::string& image, const std::vector<std::string>& allowed) {
  if (allowed.empty()) return {};
  const std::string wanted = normalizeImageName(image);
  std::string list;
  for (const auto& a : allowed) {
    if (normalizeImageName(a) == wanted) return {};
    list += (list.empty() ? "" : ", ") + normalizeImageName(a);
  }
  return invalid("image " + image + " is not allowed on this host (allowed: " + list +
                 "); an admin can add it with --allowed-images");
}

}  // namespace sandman
