#include "gpu/cost_rates.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <set>

namespace sandman {
namespace {

std::string lower(std::string_view s) {
  std::string r(s);
  for (auto& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

Error badEntry(std::string_view entry, const std::string& why) {
  return invalid("--gpu-hourly-rates: entry '" + std::string(entry) + "' " + why +
                 " (expected MODEL=PRICE,..., e.g. A100=2.50,H100=4.00)");
}

}  // namespace

Result<CostRates> CostRates::parse(const std::string& spec) {
  std::string_view all = trim(spec);
  return parse(all.empty() ? std::string(kDefaultGpuHourlyRates) : spec, nullptr);
}

Result<CostRates> CostRates::parse(const std::string& spec, std::shared_ptr<const GpuCatalog> catalog,
                                   SliceBasis basis) {
  std::string_view all = trim(spec);
  CostRates rates;
  std::set<std::string> seen;
  while (!all.empty()) {
    size_t comma = all.find(',');
    std::string_view entry = trim(all.substr(0, comma));
    all = comma == std::string_view::npos ? std::string_view() : all.substr(comma + 1);
    if (entry.empty()) return badEntry(entry, "is empty");
    size_t eq = entry.find('=');
    if (eq == std::string_view::npos) return badEntry(entry, "has no '='");
    std::string key = lower(trim(entry.substr(0, eq)));
    std::string_view price_text = trim(entry.substr(eq + 1));
    if (key.empty()) return badEntry(entry, "has no model");
    double price = 0;
    auto r = std::from_chars(price_text.data(), price_text.data() + price_text.size(), price);
    if (price_text.empty() || r.ec != std::errc() || r.ptr != price_text.data() + price_text.size() ||
        !std::isfinite(price) || price < 0) {
      return badEntry(entry, "has no valid price (a non-negative number)");
    }
    if (!seen.insert(key).second) return badEntry(entry, "repeats model '" + key + "'");
    if (key == "default") {
      rates.default_ = price;
    } else {
      rates.entries_.emplace_back(std::move(key), price);
    }
  }
  rates.catalog_ = std::move(catalog);
  rates.basis_ = basis;
  return rates;
}

double CostRates::wholeGpuPerHour(const std::string& model_name) const {
  const std::string model = lower(model_name);
  size_t best_len = 0;
  double price = default_;
  if (catalog_) {
    if (const CatalogModel* m = catalog_->find(model_name)) price = m->usd_per_hour;
  }
  for (const auto& [key, p] : entries_) {
    if (key.size() > best_len && model.find(key) != std::string::npos) {
      best_len = key.size();
      price = p;
    }
  }
  return price;
}

double CostRates::share(const std::string& model_name, const std::string& profile, int compute_slices) const {
  if (profile.empty() || profile == "whole") return 1.0;
  if (catalog_ && catalog_->find(model_name) != nullptr) return catalog_->share(model_name, profile, basis_);
  if (compute_slices <= 0) return 1.0;
  const int total = computeSlicesOf(model_name);
  return static_cast<double>(std::min(compute_slices, total)) / total;
}

double CostRates::slotPerHour(const std::string& model_name, const std::string& profile,
                              int compute_slices) const {
  if (profile.empty() || profile == "whole") return wholeGpuPerHour(model_name);
  if (catalog_ && catalog_->find(model_name) != nullptr) {
    return wholeGpuPerHour(model_name) * catalog_->share(model_name, profile, basis_);
  }
  return perHour(model_name, compute_slices);
}

std::string CostRates::modelKey(const std::string& model_name) const {
  if (catalog_) {
    if (const CatalogModel* m = catalog_->find(model_name)) return m->key;
  }
  return model_name;
}

int CostRates::computeSlicesOf(const std::string& model_name) {
  return lower(model_name).find("a30") != std::string::npos ? 4 : 7;
}

double CostRates::perHour(const std::string& model_name, int compute_slices) const {
  double whole = wholeGpuPerHour(model_name);
  if (compute_slices <= 0) return whole;
  int total = computeSlicesOf(model_name);
  return whole * std::min(compute_slices, total) / total;
}

}  // namespace sandman
