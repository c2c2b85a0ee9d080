// The daemon's version: what `sandman version` prints and the OpenAPI
// document's info.version.
#pragma once

namespace sandman {

inline constexpr const char* kSandmanVersion = "0.1.0";

}  // namespace sandman
