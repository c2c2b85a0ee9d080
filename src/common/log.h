// Logging: one line per event, with fields (session, user, ...), as text or
// JSON lines (--log-format). Wraps spdlog; thread-safe.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace sandman {

enum class LogFormat { kText, kJson };

void initLogging(LogFormat format);

using LogFields = std::initializer_list<std::pair<std::string_view, std::string>>;

void logInfo(std::string_view event, LogFields fields = {});
void logWarn(std::string_view event, LogFields fields = {});
void logError(std::string_view event, LogFields fields = {});

}  // namespace sandman
