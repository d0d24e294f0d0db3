#include "common/metrics.h"

#include <algorithm>

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

bool labelsContain(const Labels& have, const Labels& want) {
  return std::all_of(want.begin(), want.end(), [&](const auto& w) {
    return std::find(have.begin(), have.end(), w) != have.end();
  });
}

}  // namespace

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

void MetricsRegistry::gaugeFunction(std::string_view name, std::string_view help,
                                    const Labels& labels, std::function<int64_t()> fn) {
  std::lock_guard lock(mu_);
  Family& f = family(name, help, "gauge");
  f.functions.emplace_back(renderLabels(labels), std::move(fn));
}

uint64_t MetricsRegistry::sum(std::string_view name, const Labels& match) const {
  std::lock_guard lock(mu_);
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
  }
  return out;
}

}  // namespace vigil
