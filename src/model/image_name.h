// Image names as an admin writes them ("img" is "img:latest") and the
// --allowed-images rule, shared by core (checked before anything is
// reserved) and the Docker runtime (checked again at create). Pure; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"

namespace sandman {

// "repo" -> "repo:latest"; names with a tag or digest stay as they are.
std::string normalizeImageName(const std::string& image);
// kInvalid (400) naming the allowed images when `image` is not among them.
Status checkImageAllowed(const std::string& image, const std::vector<std::string>& allowed);

}  // namespace sandman
