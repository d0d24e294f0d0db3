// Speed of the intel matcher: 10,000 IPv4 and 10,000 domain indicators (plus 200 CIDRs)
// against generated syslog lines, about 2% of which carry an indicator. Domains are looked
// up in a hash set, so this set has no Hyperscan database. bench/intel_bench.cc compares
// the matcher with a Hyperscan-only matcher over the same lines.
#include <benchmark/benchmark.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/event.h"
#include "common/ip.h"
#include "intel/builder.h"
#include "intel/indicator_set.h"
#include "intel/matcher.h"

namespace {

using vigil::Event;
using vigil::intel::IndicatorSet;

constexpr int kIpIndicators = 10000;
constexpr int kDomainIndicators = 10000;
constexpr int kCidrIndicators = 200;
constexpr size_t kLines = 8192;
constexpr size_t kArenaBytes = 512;

std::string indicatorDomain(int i) {
  static const char* const kTlds[] = {"com", "net", "org", "info", "example"};
  return absl::StrCat("m", i * 7919 % 100003, "-", i % 97, ".", kTlds[i % 5]);
}

// Addresses in 100.64.0.0/10; indicator i is 100.64.x.y with x*256+y = 3*i.
std::string indicatorIp(int i) {
  int n = 3 * i;
  return absl::StrCat("100.", 64 + n / 65536, ".", n / 256 % 256, ".", n % 256);
}

std::shared_ptr<const IndicatorSet> buildIndicators() {
  std::string list;
  for (int i = 0; i < kIpIndicators; ++i) absl::StrAppend(&list, indicatorIp(i), "\n");
  for (int i = 0; i < kDomainIndicators; ++i) absl::StrAppend(&list, indicatorDomain(i), "\n");
  for (int i = 0; i < kCidrIndicators; ++i)
    absl::StrAppend(&list, "172.", 16 + i / 256, ".", i % 256, ".0/24\n");
  vigil::intel::IndicatorSetBuilder builder;
  auto report = builder.addListText("bench", list, "bench");
  if (!report.ok() || report->rejected != 0) return nullptr;
  auto set = builder.build();
  return set.ok() ? *set : nullptr;
}

// Generated syslog traffic: sshd, DNS and web-proxy lines with benign names and
// addresses, and an indicator in about one line of 50.
struct Traffic {
  std::vector<std::unique_ptr<Event>> events;
  size_t message_bytes = 0;
};

Traffic generateTraffic(bool with_src_ip) {
  Traffic traffic;
  std::mt19937 rng(42);
  auto below = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  for (size_t i = 0; i < kLines; ++i) {
    bool bad = below(50) == 0;
    std::string ip = bad ? indicatorIp(below(kIpIndicators))
                         : absl::StrCat("10.", below(256), ".", below(256), ".", below(256));
    std::string domain = bad ? indicatorDomain(below(kDomainIndicators))
                             : absl::StrCat("www.site", below(100000), ".com");
    std::string line;
    switch (below(3)) {
      case 0:
        line = absl::StrCat("Failed password for invalid user admin from ", ip, " port ",
                            1024 + below(60000), " ssh2");
        break;
      case 1:
        line = absl::StrCat("client @0x7f3a ", ip, "#", 1024 + below(60000), " (", domain,
                            "): query: ", domain, " IN A +E(0)K (10.0.0.53)");
        break;
      default:
        line = absl::StrCat(ip, " TCP_MISS/200 5123 GET http://", domain,
                            "/index.html - HIER_DIRECT/", ip, " text/html");
        break;
    }
    auto event = std::make_unique<Event>(kArenaBytes);
    event->raw = event->arena.copy(line);
    event->message = event->raw;
    if (with_src_ip) event->src_ip = vigil::parseIp(ip);
    traffic.message_bytes += line.size();
    traffic.events.push_back(std::move(event));
  }
  return traffic;
}

void runMatch(benchmark::State& state, bool with_src_ip) {
  auto set = buildIndicators();
  if (set == nullptr) {
    state.SkipWithError("indicator set did not build");
    return;
  }
  Traffic traffic = generateTraffic(with_src_ip);
  vigil::intel::Scratch scratch(*set);
  // One untimed pass over every line proves that the traffic contains indicators; the
  // timed loop may run fewer iterations than there are lines.
  size_t warmup_hits = 0;
  for (auto& event : traffic.events) {
    event->hit_count = 0;
    warmup_hits += vigil::intel::matchEvent(*set, scratch, *event);
  }
  if (warmup_hits == 0) {
    state.SkipWithError("no indicator hits: the benchmark would match nothing");
    return;
  }
  size_t hits = 0;
  size_t next = 0;
  for (auto _ : state) {
    Event& event = *traffic.events[next];
    next = (next + 1) % traffic.events.size();
    event.hit_count = 0;
    hits += vigil::intel::matchEvent(*set, scratch, event);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(traffic.message_bytes / traffic.events.size()));
  state.counters["hits_per_event"] =
      benchmark::Counter(static_cast<double>(hits) / static_cast<double>(state.iterations()));
}

// matchEvent() on events whose source address the parser already extracted.
void BM_Match_SyslogWithSourceIp(benchmark::State& state) { runMatch(state, true); }
BENCHMARK(BM_Match_SyslogWithSourceIp);

// matchEvent() on message-only events: one Hyperscan scan and no address lookup.
void BM_Match_SyslogMessageOnly(benchmark::State& state) { runMatch(state, false); }
BENCHMARK(BM_Match_SyslogMessageOnly);


}  // namespace

BENCHMARK_MAIN();
