// The workload model of vigil_loadgen: what traffic one seed produces, which attacks it
// embeds, and the rule and indicator files that go with each workload (W1..W4).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vigil::bench {

struct WorkloadOptions {
  std::string workload = "W2";  // W1 parse only, W2 one threshold rule, W3, W4
  uint64_t seed = 42;
  uint64_t events = 1'000'000;
  // Start of event time, UTC nanoseconds. RFC 3164 lines carry no year, so the parser
  // picks the year closest to the receive time; only the relative times matter.
  int64_t start_ns = 1'767'225'600LL * 1'000'000'000;  // 2026-01-01T00:00:00Z
  double event_rate = 2000;         // events per second of event time
  double bruteforce_per_million = 2000;
  double scans_per_million = 300;
  double beacons_per_million = 100;
  double privesc_per_million = 200;
  double ioc_fraction = 0.005;      // background events that carry an indicator
  uint32_t tenants = 8;
  uint64_t ip_indicators = 0;       // 0: the workload's default
  uint64_t domain_indicators = 0;
  uint32_t rules = 0;               // 0: the workload's default
};

// Counts per rule that the generator derived from the events it wrote.
struct GroundTruth {
  std::vector<std::pair<std::string, uint64_t>> alerts_by_rule;  // rule id -> alerts
  uint64_t events = 0;
  uint64_t lines_rfc3164 = 0, lines_rfc5424 = 0, lines_json = 0, lines_cef = 0;
  uint64_t ioc_events = 0;       // events that carry an indicator
  uint64_t ssh_failed = 0;       // "Failed password" lines
  uint64_t bruteforce_bursts = 0, scans = 0, beacons = 0, privesc = 0;
};

// Writes events.log, intel/*.txt, rules/*.yml and truth.json into `dir`. With `pcap`,
// also events.pcap (one UDP datagram per line, Ethernet framing). Returns false and
// fills `error` on an I/O error.
bool generateWorkload(const WorkloadOptions& options, const std::string& dir, bool pcap,
                      std::string& error);

}  // namespace vigil::bench
