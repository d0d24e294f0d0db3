#include "common/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace vigil {
namespace {

std::string escapeLabelValue(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string renderLabels(const Labels& labels) {
  if (labels.empty()) return {};
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) out.push_back(',');
    out += labels[i].first;
    out += "=\"";
    out += escapeLabelValue(labels[i].second);
    out.push_back('"');
  }
  out.push_back('}');
  return out;
}

// Shortest text that reads back as `v` ("0.005", "10", "+Inf").
std::string formatDouble(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buffer[32];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), v);
  return ec == std::errc() ? std::string(buffer, end) : std::to_string(v);
}

bool endsWith(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool labelsContain(const Labels& have, const Labels& want) {
  return std::all_of(want.begin(), want.end(), [&](const auto& w) {
    return std::find(have.begin(), have.end(), w) != have.end();
  });
}

void renderHistogram(const std::string& name, const Labels& labels, const Histogram& h,
                     std::string& out) {
  Labels with_le = labels;
  with_le.emplace_back("le", "");
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= h.bounds().size(); ++i) {
    cumulative += h.bucketValue(i);
    double bound = i < h.bounds().size() ? h.bounds()[i] : HUGE_VAL;
    with_le.back().second = formatDouble(bound);
    out += name + "_bucket" + renderLabels(with_le) + " " + std::to_string(cumulative) + "\n";
  }
  out += name + "_sum" + renderLabels(labels) + " " + formatDouble(h.sum()) + "\n";
  out += name + "_count" + renderLabels(labels) + " " + std::to_string(h.count()) + "\n";
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      buckets_(std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1)) {}

void Histogram::observe(double value) {
  // The first bound >= value: Prometheus buckets are "less than or equal".
  size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

MetricsRegistry::Family& MetricsRegistry::family(std::string_view name, std::string_view help,
                                                 std::string_view type) {
  auto it = families_.find(name);
  if (it == families_.end()) {
    it = families_.emplace(std::string(name), Family{}).first;
    it->second.help = std::string(help);
    it->second.type = std::string(type);
  }
  return it->second;
}

Counter& MetricsRegistry::counter(std::string_view name, std::string_view help,
                                  const Labels& labels) {
  std::lock_guard lock(mu_);
  Family& f = family(name, help, "counter");
  std::string key = renderLabels(labels);
  for (auto& [k, c] : f.counters) {
    if (k == key) return *c;
  }
  Counter& c = counter_storage_.emplace_back();
  f.counters.emplace_back(std::move(key), &c);
  f.counter_labels.push_back(labels);
  return c;
}

Gauge& MetricsRegistry::gauge(std::string_view name, std::string_view help, const Labels& labels) {
  std::lock_guard lock(mu_);
  Family& f = family(name, help, "gauge");
  std::string key = renderLabels(labels);
  for (auto& [k, g] : f.gauges) {
    if (k == key) return *g;
  }
  Gauge& g = gauge_storage_.emplace_back();
  f.gauges.emplace_back(std::move(key), &g);
  return g;
}

Histogram& MetricsRegistry::histogram(std::string_view name, std::string_view help,
                                      const std::vector<double>& bounds, const Labels& labels) {
  std::lock_guard lock(mu_);
  Family& f = family(name, help, "histogram");
  for (auto& [l, h] : f.histograms) {
    if (l == labels) return *h;
  }
  Histogram& h = histogram_storage_.emplace_back(bounds);
  f.histograms.emplace_back(labels, &h);
  return h;
}

void MetricsRegistry::gaugeFunction(std::string_view name, std::string_view help,
                                    const Labels& labels, std::function<int64_t()> fn) {
  std::lock_guard lock(mu_);
  Family& f = family(name, help, "gauge");
  f.functions.emplace_back(renderLabels(labels), std::move(fn));
}

uint64_t MetricsRegistry::sum(std::string_view name, const Labels& match) const {
  std::lock_guard lock(mu_);
  for (std::string_view suffix : {"_count", "_sum"}) {
    if (!endsWith(name, suffix)) continue;
    auto h = families_.find(name.substr(0, name.size() - suffix.size()));
    if (h == families_.end() || h->second.type != "histogram") continue;
    double total = 0;
    for (const auto& [labels, histogram] : h->second.histograms) {
      if (!labelsContain(labels, match)) continue;
      total += suffix == "_count" ? static_cast<double>(histogram->count()) : histogram->sum();
    }
    return static_cast<uint64_t>(total);
  }
  auto it = families_.find(name);
  if (it == families_.end()) return 0;
  uint64_t total = 0;
  const Family& f = it->second;
  for (size_t i = 0; i < f.counters.size(); ++i) {
    if (labelsContain(f.counter_labels[i], match)) total += f.counters[i].second->value();
  }
  return total;
}

std::string MetricsRegistry::renderPrometheus() const {
  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& [name, f] : families_) {
    out += "# HELP " + name + " " + f.help + "\n";
    out += "# TYPE " + name + " " + f.type + "\n";
    for (const auto& [labels, c] : f.counters) {
      out += name + labels + " " + std::to_string(c->value()) + "\n";
    }
    for (const auto& [labels, g] : f.gauges) {
      out += name + labels + " " + std::to_string(g->value()) + "\n";
    }
    for (const auto& [labels, fn] : f.functions) {
      out += name + labels + " " + std::to_string(fn()) + "\n";
    }
    for (const auto& [labels, h] : f.histograms) renderHistogram(name, labels, *h, out);
  }
  return out;
}

}  // namespace vigil
