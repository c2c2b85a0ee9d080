// Histogram: a lock-free cumulative histogram with fixed upper bounds, for
// latencies that /metrics exports (session create, HTTP requests). Any module
// may own one; observe() is thread-safe and wait-free.
#pragma once

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <vector>

namespace sandman {

struct HistogramSnapshot {
  std::vector<double> bounds;    // upper bounds, ascending (seconds for latencies)
  std::vector<uint64_t> counts;  // cumulative: counts[i] = observations <= bounds[i]
  uint64_t count = 0;            // all observations (the +Inf bucket)
  double sum = 0;
};

class Histogram {
 public:
  explicit Histogram(std::initializer_list<double> bounds) : bounds_(bounds), buckets_(bounds_.size()) {}

  void observe(double v) {
    for (size_t i = 0; i < bounds_.size(); ++i) {
      if (v <= bounds_[i]) {
        buckets_[i].fetch_add(1, std::memory_order_relaxed);
        break;
      }
    }
    count_.fetch_add(1, std::memory_order_relaxed);
    // Sum in microunits: atomic<double>::fetch_add needs C++20 library support g++ 12 lacks.
    sum_micro_.fetch_add(static_cast<int64_t>(v * 1e6), std::memory_order_relaxed);
  }

  HistogramSnapshot snapshot() const {
    HistogramSnapshot s;
    s.bounds = bounds_;
    uint64_t running = 0;
    for (const auto& b : buckets_) {
      running += b.load(std::memory_order_relaxed);
      s.counts.push_back(running);
    }
    s.count = count_.load(std::memory_order_relaxed);
    if (s.count < running) s.count = running;  // observe() bumps the bucket first
    s.sum = static_cast<double>(sum_micro_.load(std::memory_order_relaxed)) / 1e6;
    return s;
  }

 private:
  const std::vector<double> bounds_;
  std::vector<std::atomic<uint64_t>> buckets_;  // per bucket, not cumulative
  std::atomic<uint64_t> count_{0};
  std::atomic<int64_t> sum_micro_{0};
};

}  // namespace sandman
