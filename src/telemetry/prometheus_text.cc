#include "telemetry/prometheus_text.h"

#include <charconv>
#include <cmath>
#include <cstdint>

namespace sandman {
namespace {

const char* typeName(MetricType t) {
  switch (t) {
    case MetricType::kGauge: return "gauge";
    case MetricType::kCounter: return "counter";
    case MetricType::kHistogram: return "histogram";
  }
  return "untyped";
}

void appendValue(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    char buf[32];
    // Whole numbers (counts, bytes, timestamps) as plain integers: the shortest
    // form would be 8.589934592e+10, valid but unreadable to an operator.
    auto r = std::trunc(v) == v && std::fabs(v) < 1e15
                 ? std::to_chars(buf, buf + sizeof buf, static_cast<int64_t>(v))
                 : std::to_chars(buf, buf + sizeof buf, v);  // shortest text that round-trips
    out.append(buf, r.ptr);
  }
}

void appendEscaped(std::string& out, std::string_view v, bool quote_too) {
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quote_too) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

}  // namespace

std::string formatPromValue(double v) {
  std::string s;
  appendValue(s, v);
  return s;
}

std::string escapeLabelValue(std::string_view v) {
  std::string s;
  appendEscaped(s, v, true);
  return s;
}

void PrometheusText::begin(std::string_view name, MetricType type, std::string_view help) {
  name_.assign(name);
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  appendEscaped(out_, help, false);  // HELP escapes backslash and newline only
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += typeName(type);
  out_ += '\n';
}

void PrometheusText::sample(const Labels& labels, double value) { line("", labels, nullptr, value); }

void PrometheusText::histogram(const Labels& labels, const HistogramSnapshot& h) {
  for (size_t i = 0; i < h.bounds.size() && i < h.counts.size(); ++i) {
    std::string le = formatPromValue(h.bounds[i]);
    Label bound{"le", le};
    line("_bucket", labels, &bound, static_cast<double>(h.counts[i]));
  }
  Label inf{"le", "+Inf"};
  line("_bucket", labels, &inf, static_cast<double>(h.count));
  line("_sum", labels, nullptr, h.sum);
  line("_count", labels, nullptr, static_cast<double>(h.count));
}

void PrometheusText::line(std::string_view suffix, const Labels& labels, const Label* extra, double value) {
  out_ += name_;
  out_ += suffix;
  bool open = false;
  auto add = [&](const Label& l) {
    if (l.value.empty()) return;
    out_ += open ? ',' : '{';
    open = true;
    out_ += l.name;
    out_ += "=\"";
    appendEscaped(out_, l.value, true);
    out_ += '"';
  };
  for (const auto& l : labels) add(l);
  if (extra) add(*extra);
  if (open) out_ += '}';
  out_ += ' ';
  appendValue(out_, value);
  out_ += '\n';
}

}  // namespace sandman
