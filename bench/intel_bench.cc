// Threat-intel figures at appliance scale:
//   - the full build of 1,000,000 indicators and 1,000 regexes;
//   - heap bytes per address and per domain indicator;
//   - the match cost of one event against that set, alone, in batches and through a
//     snapshot with a delta part (the pipeline's call);
//   - the match stage over syslog lines with 10k and 100k indicators per type, and with
//     many domains that share a suffix common in the traffic, each beside a Hyperscan-only
//     scan of the same lines;
//   - worker batch times while snapshots are swapped.
#include <benchmark/benchmark.h>
#include <hs.h>
#include <malloc.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/event.h"
#include "common/ip.h"
#include "intel/builder.h"
#include "intel/indicator_set.h"
#include "intel/internal/url_email_marker.h"
#include "intel/matcher.h"
#include "intel/snapshot.h"

namespace {

using vigil::Event;
using vigil::IndicatorType;
using vigil::intel::IndicatorSet;
using vigil::intel::IndicatorSetBuilder;

constexpr size_t kArenaBytes = 1024;
constexpr size_t kLines = 8192;

// --- generated indicators -------------------------------------------------------------

// Indicator i is a distinct IPv4 address, 1.0.0.0 upwards in steps of 3 (outside the
// benign traffic's 10.0.0.0/8).
std::string indicatorIp(int i) {
  const int n = 3 * i;
  return absl::StrCat(1 + n / 16777216 % 200, ".", n / 65536 % 256, ".", n / 256 % 256, ".",
                      n % 256);
}
std::string indicatorIpv6(int i) {
  return absl::StrCat("2001:db8:", absl::Hex(i / 65536), ":", absl::Hex(i % 65536), "::1");
}
// Distinct /29 networks in 11.0.0.0/8.
std::string indicatorCidr(int i) {
  const uint32_t a = (11u << 24) + static_cast<uint32_t>(i) * 8;
  return absl::StrCat(a >> 24, ".", a >> 16 & 255, ".", a >> 8 & 255, ".", a & 255, "/29");
}
std::string indicatorDomain(int i, const std::string& suffix = "") {
  static const char* const kTlds[] = {"com", "net", "org", "info", "example"};
  if (!suffix.empty()) return absl::StrCat("m", i, ".", suffix);
  return absl::StrCat("m", i * 7919 % 1000003, "-", i % 97, ".", kTlds[i % 5]);
}
std::string indicatorUrl(int i) { return absl::StrCat("http://u", i, ".example/p/", i * 31, ".php"); }
std::string indicatorSha256(int i) {
  std::mt19937_64 rng(static_cast<uint64_t>(i) + 1);
  std::string out;
  static const char kHex[] = "0123456789abcdef";
  for (int k = 0; k < 64; ++k) out.push_back(kHex[rng() % 16]);
  return out;
}

struct Mix {
  int ipv4 = 0;
  int ipv6 = 0;
  int cidr = 0;
  int domains = 0;
  int urls = 0;
  int hashes = 0;
  int regexes = 0;
  std::string domain_suffix;  // non-empty: every domain ends in it
};

std::shared_ptr<const IndicatorSet> build(const Mix& mix) {
  std::string list;
  for (int i = 0; i < mix.ipv4; ++i) absl::StrAppend(&list, indicatorIp(i), "\n");
  for (int i = 0; i < mix.ipv6; ++i) absl::StrAppend(&list, indicatorIpv6(i), "\n");
  for (int i = 0; i < mix.cidr; ++i) absl::StrAppend(&list, indicatorCidr(i), "\n");
  for (int i = 0; i < mix.domains; ++i) {
    absl::StrAppend(&list, indicatorDomain(i, mix.domain_suffix), "\n");
  }
  for (int i = 0; i < mix.urls; ++i) absl::StrAppend(&list, indicatorUrl(i), "\n");
  for (int i = 0; i < mix.hashes; ++i) absl::StrAppend(&list, indicatorSha256(i), "\n");
  IndicatorSetBuilder builder;
  if (!builder.addListText("bench", list, "bench").ok()) return nullptr;
  std::string regexes;
  for (int i = 0; i < mix.regexes; ++i) {
    absl::StrAppend(&regexes, "\\\\Temp\\\\[a-z]{", 4 + i % 5, "}", i, "\\.(exe|dll);70\n");
  }
  if (!regexes.empty() && !builder.addRegexListText("regex", regexes, "bench").ok()) return nullptr;
  auto set = builder.build();
  return set.ok() ? *set : nullptr;
}

size_t heapBytes() { return mallinfo2().uordblks + mallinfo2().hblkhd; }

// --- generated traffic ----------------------------------------------------------------

struct Traffic {
  std::vector<std::unique_ptr<Event>> events;
  size_t message_bytes = 0;
};

// sshd, DNS and proxy lines; about one in 50 carries an indicator. With `suffix`, benign
// names also end in it (a CDN suffix that both the list and the traffic use).
Traffic generateTraffic(int ips, int domains, const std::string& suffix = "") {
  Traffic traffic;
  std::mt19937 rng(42);
  auto below = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  for (size_t i = 0; i < kLines; ++i) {
    const bool bad = below(50) == 0;
    std::string ip = bad ? indicatorIp(below(ips))
                         : absl::StrCat("10.", below(256), ".", below(256), ".", below(256));
    std::string domain = bad ? indicatorDomain(below(domains), suffix)
                             : (suffix.empty() ? absl::StrCat("www.site", below(100000), ".com")
                                               : absl::StrCat("img", below(100000), ".", suffix));
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
    event->src_ip = vigil::parseIp(ip);
    traffic.message_bytes += line.size();
    traffic.events.push_back(std::move(event));
  }
  return traffic;
}

// The 1M-indicator set, built once for the benchmarks that use it.
const std::shared_ptr<const IndicatorSet>& millionSet() {
  static const std::shared_ptr<const IndicatorSet> set =
      build({500'000, 50'000, 50'000, 300'000, 50'000, 50'000, 1000, ""});
  return set;
}

// --- build and memory -----------------------------------------------------------------

// Full build of 600k addresses and CIDRs, 300k domains, 50k URLs, 50k SHA-256 and 1,000
// regexes, on the calling thread (one core).
void BM_Intel_Build_Million(benchmark::State& state) {
  size_t indicators = 0;
  for (auto _ : state) {
    auto set = build({500'000, 50'000, 50'000, 300'000, 50'000, 50'000, 1000, ""});
    if (set == nullptr) {
      state.SkipWithError("build failed");
      return;
    }
    indicators = set->size();
    state.counters["hs_compile_s"] = absl::ToDoubleSeconds(set->stats().hs_compile_time);
    state.counters["hs_database_MB"] = static_cast<double>(set->stats().hs_database_bytes) / 1e6;
  }
  state.counters["indicators"] = static_cast<double>(indicators);
}
BENCHMARK(BM_Intel_Build_Million)->Iterations(1)->Unit(benchmark::kSecond);

// Heap bytes held by a snapshot of 600k address and CIDR indicators, per indicator.
void BM_Intel_Memory_PerAddress(benchmark::State& state) {
  for (auto _ : state) {
    const size_t before = heapBytes();
    auto set = build({500'000, 50'000, 50'000, 0, 0, 0, 0, ""});
    const size_t after = heapBytes();
    state.counters["bytes_per_indicator"] =
        static_cast<double>(after - before) / static_cast<double>(set->size());
  }
}
BENCHMARK(BM_Intel_Memory_PerAddress)->Iterations(1)->Unit(benchmark::kSecond);

// Heap bytes held by a snapshot of 300k domain indicators (with its Hyperscan database).
void BM_Intel_Memory_PerDomain(benchmark::State& state) {
  for (auto _ : state) {
    const size_t before = heapBytes();
    auto set = build({0, 0, 0, 300'000, 0, 0, 0, ""});
    const size_t after = heapBytes();
    state.counters["bytes_per_indicator"] =
        static_cast<double>(after - before) / static_cast<double>(set->size());
    state.counters["hs_database_bytes_per_indicator"] =
        static_cast<double>(set->stats().hs_database_bytes) / static_cast<double>(set->size());
  }
}
BENCHMARK(BM_Intel_Memory_PerDomain)->Iterations(1)->Unit(benchmark::kSecond);

// --- matching -------------------------------------------------------------------------

void runMatch(benchmark::State& state, const IndicatorSet& set, Traffic& traffic) {
  vigil::intel::Scratch scratch(set);
  size_t warmup_hits = 0;
  for (auto& event : traffic.events) {
    event->hit_count = 0;
    warmup_hits += vigil::intel::matchEvent(set, scratch, *event);
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
    hits += vigil::intel::matchEvent(set, scratch, event);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.counters["hits_per_event"] =
      benchmark::Counter(static_cast<double>(hits) / static_cast<double>(state.iterations()));
}

// Events per matchEvents() call in the batch benchmarks, the pipeline's batch size.
constexpr size_t kBatchEvents = 64;

// Same events as runMatch(), matched kBatchEvents at a time with matchEvents(), which
// prefetches the next events while it matches one. One iteration is one batch;
// "per_event" is the CPU time per event.
void runMatchBatch(benchmark::State& state, const IndicatorSet& set, Traffic& traffic) {
  static_assert(kLines % kBatchEvents == 0, "batches must tile the traffic");
  vigil::intel::Scratch scratch(set);
  std::vector<Event*> events;
  for (auto& event : traffic.events) events.push_back(event.get());
  size_t warmup_hits = 0;
  for (Event* event : events) event->hit_count = 0;
  warmup_hits += vigil::intel::matchEvents(set, scratch, events);
  if (warmup_hits == 0) {
    state.SkipWithError("no indicator hits: the benchmark would match nothing");
    return;
  }
  size_t hits = 0;
  size_t next = 0;
  for (auto _ : state) {
    const std::span<Event* const> batch(events.data() + next, kBatchEvents);
    next = (next + kBatchEvents) % events.size();
    for (Event* event : batch) event->hit_count = 0;
    hits += vigil::intel::matchEvents(set, scratch, batch);
  }
  const auto events_matched = static_cast<double>(state.iterations() * kBatchEvents);
  state.SetItemsProcessed(static_cast<int64_t>(events_matched));
  state.counters["hits_per_event"] =
      benchmark::Counter(static_cast<double>(hits) / events_matched);
  state.counters["per_event"] =
      benchmark::Counter(static_cast<double>(kBatchEvents),
                         benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

// Compiles every domain and address indicator of `set` as caseless Hyperscan literals:
// the database a Hyperscan-only matcher would scan. The caller frees it.
hs_database_t* literalDatabase(const IndicatorSet& set) {
  std::vector<std::string> expressions;
  for (uint32_t id = 0; id < set.size(); ++id) {
    std::string escaped;
    for (char c : set.indicator(id).text) {
      absl::StrAppend(&escaped, "\\x", absl::Hex(static_cast<unsigned char>(c), absl::kZeroPad2));
    }
    expressions.push_back(std::move(escaped));
  }
  std::vector<const char*> patterns;
  std::vector<unsigned> flags(expressions.size(), HS_FLAG_CASELESS | HS_FLAG_SINGLEMATCH);
  std::vector<unsigned> ids;
  for (size_t i = 0; i < expressions.size(); ++i) {
    patterns.push_back(expressions[i].c_str());
    ids.push_back(static_cast<unsigned>(i));
  }
  hs_database_t* db = nullptr;
  hs_compile_error_t* error = nullptr;
  if (hs_compile_multi(patterns.data(), flags.data(), ids.data(),
                       static_cast<unsigned>(ids.size()), HS_MODE_BLOCK, nullptr, &db,
                       &error) != HS_SUCCESS) {
    hs_free_compile_error(error);
    return nullptr;
  }
  return db;
}

// hs_scan() alone, with every indicator as a literal, over the same lines.
void runHyperscanOnly(benchmark::State& state, const IndicatorSet& set, const Traffic& traffic) {
  static std::map<const IndicatorSet*, hs_database_t*> databases;
  hs_database_t*& database = databases[&set];
  if (database == nullptr) database = literalDatabase(set);
  hs_scratch_t* scratch = nullptr;
  if (database == nullptr || hs_alloc_scratch(database, &scratch) != HS_SUCCESS) {
    state.SkipWithError("Hyperscan compile failed");
    return;
  }
  auto count = [](unsigned, unsigned long long, unsigned long long, unsigned, void* context) {
    ++*static_cast<size_t*>(context);
    return 0;
  };
  size_t matches = 0;
  size_t next = 0;
  for (auto _ : state) {
    const Event& event = *traffic.events[next];
    next = (next + 1) % traffic.events.size();
    hs_scan(database, event.message.data(), static_cast<unsigned>(event.message.size()), 0,
            scratch, count, &matches);
  }
  hs_free_scratch(scratch);
  benchmark::DoNotOptimize(matches);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

// One Hyperscan database of the URL, email and regex indicators of `set`, compiled with
// the builder's expressions and flags (URLs and emails as caseless literals, letters and
// digits kept and every other byte as \xHH; regexes caseless with single match), kept
// for the process: what the matcher scanned before the URL and email database was split
// off. Returns nullptr when the compile fails.
const hs_database_t* combinedDatabase(const IndicatorSet& set) {
  static std::map<const IndicatorSet*, hs_database_t*> databases;
  hs_database_t*& database = databases[&set];
  if (database != nullptr) return database;
  std::vector<std::string> expressions;
  std::vector<unsigned> ids;
  std::vector<unsigned> flags;
  for (uint32_t id = 0; id < set.size(); ++id) {
    const IndicatorType type = set.type(id);
    if (type != IndicatorType::kUrl && type != IndicatorType::kEmail &&
        type != IndicatorType::kRegex) {
      continue;
    }
    std::string expression;
    for (char c : set.text(id)) {
      if (type == IndicatorType::kRegex || absl::ascii_isalnum(c)) {
        expression.push_back(c);
      } else {
        absl::StrAppend(&expression, "\\x",
                        absl::Hex(static_cast<unsigned char>(c), absl::kZeroPad2));
      }
    }
    expressions.push_back(std::move(expression));
    ids.push_back(id);
    flags.push_back(type == IndicatorType::kRegex ? HS_FLAG_CASELESS | HS_FLAG_SINGLEMATCH
                                                  : HS_FLAG_CASELESS);
  }
  std::vector<const char*> patterns;
  for (const std::string& e : expressions) patterns.push_back(e.c_str());
  hs_compile_error_t* error = nullptr;
  if (hs_compile_multi(patterns.data(), flags.data(), ids.data(),
                       static_cast<unsigned>(ids.size()), HS_MODE_BLOCK, nullptr, &database,
                       &error) != HS_SUCCESS) {
    hs_free_compile_error(error);
    database = nullptr;
  }
  return database;
}

// One event (source address plus a DNS, proxy or sshd message) against the 1M set.
void BM_Intel_Lookup_MillionSet(benchmark::State& state) {
  Traffic traffic = generateTraffic(500'000, 300'000);
  runMatch(state, *millionSet(), traffic);
}
BENCHMARK(BM_Intel_Lookup_MillionSet)->Repetitions(5)->ReportAggregatesOnly(true);

// BM_Intel_Lookup_MillionSet with the events matched 64 at a time by matchEvents().
void BM_Intel_Lookup_MillionSet_Batch(benchmark::State& state) {
  Traffic traffic = generateTraffic(500'000, 300'000);
  runMatchBatch(state, *millionSet(), traffic);
}
BENCHMARK(BM_Intel_Lookup_MillionSet_Batch)->Repetitions(5)->ReportAggregatesOnly(true);

// The pipeline's call: Snapshot::matchBatch() over the same events, 64 at a time,
// against a snapshot of the 1M set plus a delta part of 1,000 domains (analyst
// indicators served until the next full build). "per_event" is the CPU time per event.
void BM_Intel_Lookup_MillionSet_Snapshot(benchmark::State& state) {
  Traffic traffic = generateTraffic(500'000, 300'000);
  vigil::intel::SnapshotStore store(1);
  store.publish(millionSet());
  std::string delta;
  for (int i = 0; i < 1000; ++i) absl::StrAppend(&delta, "analyst", i, ".example\n");
  IndicatorSetBuilder builder;
  if (!builder.addListText("analyst", delta, "bench").ok() ||
      !store.publishDelta(*builder.build()).has_value()) {
    state.SkipWithError("the delta part failed to build");
    return;
  }

  const vigil::intel::Snapshot* snapshot = store.acquire(0);
  std::vector<Event*> events;
  for (auto& event : traffic.events) events.push_back(event.get());
  size_t hits = 0;
  size_t next = 0;
  for (auto _ : state) {
    const std::span<Event* const> batch(events.data() + next, kBatchEvents);
    next = (next + kBatchEvents) % events.size();
    for (Event* event : batch) event->hit_count = 0;
    hits += snapshot->matchBatch(0, batch, 1);
  }
  store.release(0);

  const auto events_matched = static_cast<double>(state.iterations() * kBatchEvents);
  state.SetItemsProcessed(static_cast<int64_t>(events_matched));
  state.counters["hits_per_event"] =
      benchmark::Counter(static_cast<double>(hits) / events_matched);
  state.counters["per_event"] =
      benchmark::Counter(static_cast<double>(kBatchEvents),
                         benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_Intel_Lookup_MillionSet_Snapshot)->Repetitions(5)->ReportAggregatesOnly(true);

// The parts of BM_Intel_Lookup_MillionSet, over the same events and set, so that each
// part's share of the per-event time is known:
//   0: the source address lookup alone (IndicatorSet::lookupAddress);
//   1: matchEvent() of the events without their source address: the host-name walk,
//      the domain and hash lookups and the Hyperscan scan;
//   2: hs_scan() of the message alone over one database of the set's URLs and regexes,
//      compiled here, no callback work (what the matcher scanned before the split);
//   3: the same over the set's URL and email database alone;
//   4: the same over the set's regex database alone;
//   5: the scans the matcher runs now: the regex database, and the URL and email
//      database when the message may contain a URL or email (hasUrlOrEmailMarker()).
// The host-name walk and its lookups cost about 1 minus 5.
void BM_Intel_Lookup_MillionSet_Part(benchmark::State& state) {
  Traffic traffic = generateTraffic(500'000, 300'000);
  const IndicatorSet& set = *millionSet();
  size_t found = 0;
  size_t next = 0;
  switch (state.range(0)) {
    case 0:
          for (auto _ : state) {
        const Event& event = *traffic.events[next];
        next = (next + 1) % traffic.events.size();
        found += set.lookupAddress(*event.src_ip).has_value() ? 1 : 0;
      }
          break;
    case 1:
      for (auto& event : traffic.events) event->src_ip.reset();
      runMatch(state, set, traffic);
      return;
    default: {
      const int part = static_cast<int>(state.range(0));
      const hs_database_t* database = part == 2   ? combinedDatabase(set)
                                      : part == 4 ? set.regexDatabase()
                                                  : set.urlEmailDatabase();
      const hs_database_t* regexes = set.regexDatabase();
      hs_scratch_t* scratch = nullptr;
      if (database == nullptr || regexes == nullptr ||
          hs_alloc_scratch(database, &scratch) != HS_SUCCESS ||
          hs_alloc_scratch(regexes, &scratch) != HS_SUCCESS) {
        state.SkipWithError("the set has no Hyperscan database");
        return;
      }
      auto count = [](unsigned, unsigned long long, unsigned long long, unsigned, void* context) {
        ++*static_cast<size_t*>(context);
        return 0;
      };
      for (auto _ : state) {
        const Event& event = *traffic.events[next];
        next = (next + 1) % traffic.events.size();
        const std::string_view message = event.message;
        const auto size = static_cast<unsigned>(message.size());
        if (part == 5) {
          hs_scan(regexes, message.data(), size, 0, scratch, count, &found);
          if (!vigil::intel::internal::hasUrlOrEmailMarker(message)) continue;
        }
        hs_scan(database, message.data(), size, 0, scratch, count, &found);
      }
      hs_free_scratch(scratch);
      break;
    }
  }
  benchmark::DoNotOptimize(found);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_Intel_Lookup_MillionSet_Part)->DenseRange(0, 5)->Repetitions(3)
    ->ReportAggregatesOnly(true);

struct MatchCase {
  int per_type;
  std::string suffix;
};

const std::shared_ptr<const IndicatorSet>& caseSet(const MatchCase& c) {
  static std::map<std::string, std::shared_ptr<const IndicatorSet>> sets;
  const std::string key = absl::StrCat(c.per_type, "/", c.suffix);
  auto& set = sets[key];
  if (set == nullptr) set = build({c.per_type, 0, 200, c.per_type, 0, 0, 0, c.suffix});
  return set;
}

const MatchCase kCases[] = {{10'000, ""}, {100'000, ""}, {10'000, "cdn.example-cloud.net"}};

// The match stage over syslog lines. Argument 0 is 10k indicators of each type, 1 is 100k
// of each, and 2 is 10k with every domain under one suffix that benign traffic also uses.
void BM_Intel_MatchStage(benchmark::State& state) {
  const MatchCase& c = kCases[state.range(0)];
  Traffic traffic = generateTraffic(c.per_type, c.per_type, c.suffix);
  runMatch(state, *caseSet(c), traffic);
}
BENCHMARK(BM_Intel_MatchStage)->Arg(0)->Arg(1)->Arg(2);

// BM_Intel_MatchStage with the lines matched 64 at a time by matchEvents().
void BM_Intel_MatchStage_Batch(benchmark::State& state) {
  const MatchCase& c = kCases[state.range(0)];
  Traffic traffic = generateTraffic(c.per_type, c.per_type, c.suffix);
  runMatchBatch(state, *caseSet(c), traffic);
}
BENCHMARK(BM_Intel_MatchStage_Batch)->Arg(0)->Arg(1)->Arg(2);

// A Hyperscan-only matcher over the same lines as BM_Intel_MatchStage: every indicator
// of the set as a caseless literal, one scan per line, no boundary checks.
void BM_Intel_HyperscanOnly(benchmark::State& state) {
  const MatchCase& c = kCases[state.range(0)];
  Traffic traffic = generateTraffic(c.per_type, c.per_type, c.suffix);
  runHyperscanOnly(state, *caseSet(c), traffic);
}
BENCHMARK(BM_Intel_HyperscanOnly)->Arg(0)->Arg(1)->Arg(2);

// --- swaps under load -----------------------------------------------------------------

// CPU time of the calling thread in microseconds.
double threadCpuUs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

// One worker matches batches of 64 events through a SnapshotStore while this thread
// publishes a new 100k-indicator snapshot every 20 ms and frees the old ones. Reports the
// worker's batch times in wall time and in thread CPU time: on a shared machine the wall
// figures include preemption by other processes, which the CPU figures leave out.
void BM_Intel_SwapUnderLoad(benchmark::State& state) {
  constexpr size_t kBatch = 64;
  std::vector<std::shared_ptr<const IndicatorSet>> sets = {
      caseSet(kCases[1]), build({100'000, 0, 200, 100'000, 0, 0, 0, ""})};
  Traffic traffic = generateTraffic(100'000, 100'000);
  vigil::intel::SnapshotStore store(1);
  store.publish(sets[0]);

  for (auto _ : state) {
    std::atomic<bool> stop{false};
    std::vector<double> batch_us;
    std::vector<double> batch_cpu_us;
    batch_us.reserve(1 << 20);
    batch_cpu_us.reserve(1 << 20);
    std::thread worker([&] {
      size_t next = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        const auto begin = std::chrono::steady_clock::now();
        const double cpu_begin = threadCpuUs();
        const vigil::intel::Snapshot* snapshot = store.acquire(0);
        for (size_t i = 0; i < kBatch; ++i) {
          Event& event = *traffic.events[next];
          next = (next + 1) % traffic.events.size();
          event.hit_count = 0;
          snapshot->match(0, event, 1);
        }
        store.release(0);
        batch_cpu_us.push_back(threadCpuUs() - cpu_begin);
        batch_us.push_back(
            std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - begin)
                .count());
      }
    });
    for (int swap = 0; swap < 50; ++swap) {
      store.publish(sets[static_cast<size_t>(swap) % sets.size()]);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      store.reclaim();
    }
    stop.store(true);
    worker.join();
    store.reclaim();
    std::sort(batch_us.begin(), batch_us.end());
    state.counters["batches"] = static_cast<double>(batch_us.size());
    state.counters["batch_p50_us"] = batch_us[batch_us.size() / 2];
    state.counters["batch_p99_us"] = batch_us[batch_us.size() * 99 / 100];
    state.counters["batch_max_us"] = batch_us.back();
    std::sort(batch_cpu_us.begin(), batch_cpu_us.end());
    state.counters["batch_cpu_p99_us"] = batch_cpu_us[batch_cpu_us.size() * 99 / 100];
    state.counters["batch_cpu_max_us"] = batch_cpu_us.back();
  }
}
BENCHMARK(BM_Intel_SwapUnderLoad)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
