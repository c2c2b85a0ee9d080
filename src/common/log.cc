#include "common/log.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <nlohmann/json.hpp>

namespace sandman {
namespace {

std::atomic<LogFormat> g_format{LogFormat::kText};

std::string render(std::string_view level, std::string_view event, LogFields fields) {
  if (g_format.load() == LogFormat::kJson) {
    nlohmann::json j;
    j["level"] = level;
    j["msg"] = event;
    for (const auto& [k, v] : fields) j[std::string(k)] = v;
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  std::string line(event);
  for (const auto& [k, v] : fields) {
    line += ' ';
    line += k;
    line += '=';
    bool quote = v.empty() || v.find_first_of(" \"=") != std::string::npos;
    line += quote ? nlohmann::json(v).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) : v;
  }
  return line;
}

}  // namespace

void initLogging(LogFormat format) {
  g_format.store(format);
  auto logger = spdlog::stderr_logger_mt("sandman");
  if (format == LogFormat::kJson) {
    // The time goes first as its own JSON field; render() supplies the rest.
    logger->set_pattern("{\"time\":\"%Y-%m-%dT%H:%M:%S.%eZ\",%v", spdlog::pattern_time_type::utc);
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %-5l %v", spdlog::pattern_time_type::utc);
  }
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

static void emit(spdlog::level::level_enum lvl, std::string_view name, std::string_view event,
                 LogFields fields) {
  std::string line = render(name, event, fields);
  if (g_format.load() == LogFormat::kJson) line = line.substr(1);  // splice after "time"
  spdlog::log(lvl, "{}", line);
}

void logInfo(std::string_view event, LogFields fields) { emit(spdlog::level::info, "info", event, fields); }
void logWarn(std::string_view event, LogFields fields) { emit(spdlog::level::warn, "warn", event, fields); }
void logError(std::string_view event, LogFields fields) { emit(spdlog::level::err, "error", event, fields); }

}  // namespace sandman
