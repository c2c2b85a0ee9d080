#include "common/time_format.h"

#include <cstdio>
#include <ctime>

namespace sandman {

int64_t toUnixMillis(TimePoint t) {
  return std::chrono::duration_cast<Millis>(t.time_since_epoch()).count();
}

TimePoint fromUnixMillis(int64_t ms) { return TimePoint(Millis(ms)); }

// Civil date arithmetic from <chrono> rather than gmtime_r, which takes
// glibc's time-zone lock: listings format thousands of times per second.
std::string formatRfc3339(TimePoint t) {
  using namespace std::chrono;
  const int64_t ms = toUnixMillis(t);
  const sys_time<milliseconds> tp{milliseconds(ms)};
  const auto day = floor<days>(tp);
  const year_month_day ymd{day};
  const hh_mm_ss hms{tp - day};
  char buf[32];
  char* p = buf;
  auto put = [&p](int64_t v, int width) {
    for (int i = width - 1; i >= 0; --i, v /= 10) p[i] = static_cast<char>('0' + v % 10);
    p += width;
  };
  put(static_cast<int>(ymd.year()), 4);
  *p++ = '-';
  put(static_cast<unsigned>(ymd.month()), 2);
  *p++ = '-';
  put(static_cast<unsigned>(ymd.day()), 2);
  *p++ = 'T';
  put(hms.hours().count(), 2);
  *p++ = ':';
  put(hms.minutes().count(), 2);
  *p++ = ':';
  put(hms.seconds().count(), 2);
  *p++ = '.';
  put(hms.subseconds().count(), 3);
  *p++ = 'Z';
  return std::string(buf, p);
}

std::optional<TimePoint> parseRfc3339(const std::string& s) {
  std::tm tm{};
  int ms = 0;
  int consumed = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6) {
    return std::nullopt;
  }
  std::string rest = s.substr(static_cast<size_t>(consumed));
  if (!rest.empty() && rest[0] == '.') {
    size_t i = 1;
    int digits = 0;
    while (i < rest.size() && rest[i] >= '0' && rest[i] <= '9') {
      if (digits < 3) { ms = ms * 10 + (rest[i] - '0'); ++digits; }
      ++i;
    }
    while (digits < 3) { ms *= 10; ++digits; }
    rest = rest.substr(i);
  }
  if (rest != "Z") return std::nullopt;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  std::time_t secs = timegm(&tm);
  return fromUnixMillis(static_cast<int64_t>(secs) * 1000 + ms);
}

}  // namespace sandman
