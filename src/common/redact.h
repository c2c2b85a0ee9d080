// Redaction of secrets that hide in URLs (webhook paths, user:password@,
// ?token=...), so a URL can be logged to say where, never with what key.
// Pure; thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace sandman {

// "https://user:pw@hooks.example.com:8443/services/T0/B0/XYZ?token=abc"
// -> "https://hooks.example.com:8443/..." : scheme, host and port only.
std::string redactUrl(std::string_view url);

}  // namespace sandman
