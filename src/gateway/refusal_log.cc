#include "gateway/refusal_log.h"

#include "common/log.h"

namespace sandman {

RefusalLog::RefusalLog(RefusalLogOptions options, const Clock& clock, ConnectionJournal& journal,
                       std::map<std::string, uint64_t>& totals)
    : options_(options), clock_(clock), journal_(journal), totals_(totals) {}

void RefusalLog::roll() {
  TimePoint now = clock_.now();
  if (now - window_start_ < options_.interval) return;
  if (window_suppressed_ > 0) {
    logWarn("gateway_refusals_suppressed",
            {{"lines", std::to_string(window_suppressed_)},
             {"interval_ms", std::to_string(options_.interval.count())},
             {"hint", "counted in sandman_gateway_refusals_total"}});
  }
  window_start_ = now;
  lines_ = records_ = 0;
  window_suppressed_ = 0;
}

bool RefusalLog::mayLog() {
  roll();
  if (lines_ < options_.budget) {
    ++lines_;
    return true;
  }
  ++window_suppressed_;
  ++suppressed_lines_;
  return false;
}

void RefusalLog::refused(const std::string& kind, const ConnectionRecord& rec) {
  ++totals_[kind];
  if (mayLog()) {
    logWarn("gateway_refused", {{"source", rec.source}, {"user", rec.user_id}, {"kind", kind},
                                {"reason", rec.reason}});
  }
  if (records_ < options_.budget) {
    ++records_;
    journal_.refused(rec);
  } else {
    ++suppressed_records_;
  }
}

}  // namespace sandman
