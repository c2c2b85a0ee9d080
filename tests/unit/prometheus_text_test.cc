#include "telemetry/prometheus_text.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace sandman {
namespace {

TEST(PrometheusText, EscapesBackslashQuoteAndNewlineInLabelValues) {
  EXPECT_EQ(escapeLabelValue("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_EQ(escapeLabelValue("plain-value_1"), "plain-value_1");
}

TEST(PrometheusText, FormatsValuesAsShortestRoundTrip) {
  EXPECT_EQ(formatPromValue(1), "1");
  EXPECT_EQ(formatPromValue(0.25), "0.25");
  EXPECT_EQ(formatPromValue(85), "85");
  EXPECT_EQ(formatPromValue(-3.5), "-3.5");
  EXPECT_EQ(formatPromValue(85899345920), "85899345920") << "whole numbers without an exponent";
  EXPECT_EQ(formatPromValue(1700000000.5), "1700000000.5");
  EXPECT_EQ(formatPromValue(-0.0), "0");
  EXPECT_EQ(formatPromValue(1e300), "1e+300");
  EXPECT_EQ(formatPromValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(formatPromValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(formatPromValue(std::nan("")), "NaN");
  EXPECT_EQ(std::stod(formatPromValue(0.1 + 0.2)), 0.1 + 0.2);
}

TEST(PrometheusText, FamilyStartsWithHelpThenType) {
  PrometheusText w;
  w.begin("gpu_temperature", MetricType::kGauge, "Temperature in C.\nSecond \\ line");
  w.sample({{"gpu", "0"}, {"UUID", "GPU-1"}}, 44);
  EXPECT_EQ(w.text(),
            "# HELP gpu_temperature Temperature in C.\\nSecond \\\\ line\n"
            "# TYPE gpu_temperature gauge\n"
            "gpu_temperature{gpu=\"0\",UUID=\"GPU-1\"} 44\n");
}

TEST(PrometheusText, LeavesOutLabelsWithEmptyValues) {
  PrometheusText w;
  w.begin("x_total", MetricType::kCounter, "h");
  w.sample({{"session_id", ""}, {"gpu", "1"}, {"user_id", ""}}, 2);
  w.sample({{"session_id", ""}}, 3);
  EXPECT_EQ(w.text(), "# HELP x_total h\n# TYPE x_total counter\nx_total{gpu=\"1\"} 2\nx_total 3\n");
}

TEST(PrometheusText, HistogramHasCumulativeBucketsInfSumAndCount) {
  Histogram h{0.1, 1, 10};
  h.observe(0.05);
  h.observe(0.5);
  h.observe(0.7);
  h.observe(100);
  PrometheusText w;
  w.begin("lat_seconds", MetricType::kHistogram, "h");
  w.histogram({{"route", "a\"b"}}, h.snapshot());
  EXPECT_EQ(w.text(),
            "# HELP lat_seconds h\n# TYPE lat_seconds histogram\n"
            "lat_seconds_bucket{route=\"a\\\"b\",le=\"0.1\"} 1\n"
            "lat_seconds_bucket{route=\"a\\\"b\",le=\"1\"} 3\n"
            "lat_seconds_bucket{route=\"a\\\"b\",le=\"10\"} 3\n"
            "lat_seconds_bucket{route=\"a\\\"b\",le=\"+Inf\"} 4\n"
            "lat_seconds_sum{route=\"a\\\"b\"} 101.25\n"
            "lat_seconds_count{route=\"a\\\"b\"} 4\n");
}

}  // namespace
}  // namespace sandman
