// PrometheusText: writes the Prometheus text exposition format (0.0.4) that
// /metrics serves: families with HELP/TYPE, escaped label values, histograms.
// A value type used by one scrape at a time; not thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/histogram.h"

namespace sandman {

inline constexpr const char* kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

enum class MetricType { kGauge, kCounter, kHistogram };

struct Label {
  std::string_view name;
  std::string_view value;
};
using Labels = std::vector<Label>;

class PrometheusText {
 public:
  // Starts a family. Every sample of a family must follow its begin() before
  // the next family starts: the format forbids interleaving.
  void begin(std::string_view name, MetricType type, std::string_view help);
  // One sample of the current gauge/counter family. Labels with an empty value
  // are left out: Prometheus treats an empty label as an absent one.
  void sample(const Labels& labels, double value);
  // The _bucket/_sum/_count lines of the current histogram family.
  void histogram(const Labels& labels, const HistogramSnapshot& h);

  const std::string& text() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  void line(std::string_view suffix, const Labels& labels, const Label* extra, double value);

  std::string out_;
  std::string name_;  // the current family
};

// "1", "0.25", "1e+21", "NaN", "+Inf": the shortest text that reads back as v.
std::string formatPromValue(double v);
// Escapes backslash, double quote and newline, as label values require.
std::string escapeLabelValue(std::string_view v);

}  // namespace sandman
