// The workload model of vigil_loadgen: what traffic one seed produces, which attacks it
// embeds, and the rule and indicator files that go with each workload (W1..W4).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
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

// Kind of one written event, as the simulated rules classify it.
enum class EventKind : uint8_t { kOther, kSshFail, kFwDeny, kDnsIoc, kLogon, kPriv };
enum class LineFormat : uint8_t { kRfc3164, kRfc5424, kCef, kJson, kRfc5424Json };
struct EventFacts {
  EventKind kind = EventKind::kOther;
  LineFormat format = LineFormat::kRfc5424;
  uint32_t tenant = 0;
  uint64_t key = 0;       // source address, or user number for logon/priv
  int64_t time_ns = 0;    // event time as the parser reads it back
  bool ioc = false;
};

// One stretch of a segmented run: its lines and the facts of each line.
struct Segment {
  uint64_t index = 0;
  std::string text;               // the lines, each ending in '\n'
  std::vector<size_t> line_ends;  // offset just past each line's '\n' in `text`
  std::vector<EventFacts> facts;  // one per line, in the same order
  GroundTruth planned;            // the attacks planned in this segment
  // The alerts per rule of the whole segment, computed on the generating thread so that
  // the sending thread need not stop for it.
  std::vector<std::pair<std::string, uint64_t>> alerts;
};

// A run of any length as a sequence of segments, each `segment_events` events generated
// like one `gen` file. Segment 0 is byte for byte the events.log that generateWorkload
// writes for the same options with `events` = `segment_events`; segment k > 0 uses a
// seed derived from (seed, k) and the same indicators. Segment k starts at event time
// start_ns + k * strideNs(). The stride leaves a gap longer than the longest rule
// window (10 min) after the last event of a segment. So no window contains events of two
// segments, and the alerts of a run are the sum of the alerts of its segments.
class SegmentedWorkload {
 public:
  SegmentedWorkload(const WorkloadOptions& options, uint64_t segment_events);
  ~SegmentedWorkload();

  // Generates segment `index`. Safe to call from several threads at once.
  Segment generate(uint64_t index) const;
  int64_t strideNs() const { return stride_ns_; }
  // Segments that fit in the first 150 days of event time. RFC 3164 lines carry no
  // year, so the parser may read a later stamp back in another year.
  uint64_t maxSegments() const;
  const WorkloadOptions& options() const { return options_; }
  uint64_t indicatorIps() const;
  uint64_t indicatorDomains() const;

 private:
  struct State;
  WorkloadOptions options_;
  uint64_t segment_events_;
  int64_t stride_ns_;
  std::unique_ptr<State> state_;
};

// The ground truth of a segmented run, summed over the lines actually sent.
class RunTruth {
 public:
  explicit RunTruth(const SegmentedWorkload& workload);
  // Adds the first `lines` lines of `segment`.
  void add(const Segment& segment, size_t lines);
  uint64_t events() const { return totals_.events; }
  // Writes truth.json in the format of generateWorkload, plus "segments".
  bool write(const std::string& path, std::string& error) const;

 private:
  const SegmentedWorkload& workload_;
  GroundTruth totals_;
  std::vector<std::pair<std::string, uint64_t>> alerts_;
  uint64_t complete_segments_ = 0, partial_segment_lines_ = 0;
};

// Writes events.log, intel/*.txt, rules/*.yml and truth.json into `dir`. With `pcap`,
// also events.pcap (one UDP datagram per line, Ethernet framing). Returns false and
// fills `error` on an I/O error.
bool generateWorkload(const WorkloadOptions& options, const std::string& dir, bool pcap,
                      std::string& error);

}  // namespace vigil::bench
