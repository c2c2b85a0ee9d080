// User ids: POSIX user names, ^[a-z_][a-z0-9_-]{0,31}$. They name the
// workspace directory and the login, so every module that turns one into a
// path or an account checks it with this one rule. Pure; thread-safe.
#pragma once

#include <string_view>

namespace sandman {

bool isPosixUserName(std::string_view s);

}  // namespace sandman
