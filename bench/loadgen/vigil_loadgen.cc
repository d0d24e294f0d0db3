// vigil_loadgen: the traffic generator of the end-to-end benchmark (bench/e2e.sh).
//
//   vigil_loadgen gen --workload W2 --seed 42 --events 1000000 --out DIR [--pcap]
//     writes DIR/events.log, DIR/rules/, DIR/intel/ and DIR/truth.json (the alerts each
//     rule must raise, derived from what was injected).
//   vigil_loadgen send --file DIR/events.log --proto tcp --target 127.0.0.1:5514 --rate 100000
//     sends the lines to a loopback listener at a target rate (0 = as fast as possible)
//     and prints one JSON line: lines sent, seconds, achieved rate, send errors.
//   vigil_loadgen stream --workload W2 --seed 42 --duration 600 --rate 90000 --target ...
//       --truth FILE
//     generates a run of any length segment by segment while sending it (event time
//     advances across the whole run, see SegmentedWorkload) and writes the ground truth
//     of exactly the lines sent. The rules and indicator lists are the ones `gen` writes
//     for the same --workload, --seed and indicator options.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <future>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "bench/loadgen/workload.h"

namespace {

int64_t nowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

bool parseTarget(const std::string& text, sockaddr_in& addr, std::string& error) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos) {
    error = "--target '" + text + "' has no port: use 127.0.0.1:5514";
    return false;
  }
  std::string host = text.substr(0, colon);
  int port = std::atoi(text.c_str() + colon + 1);
  std::memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (port <= 0 || port > 65535 || inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    error = "--target '" + text + "' is not IPv4:PORT: use 127.0.0.1:5514";
    return false;
  }
  // Traffic stays on the machine: only loopback targets are accepted.
  if ((ntohl(addr.sin_addr.s_addr) >> 24) != 127) {
    error = "--target '" + text + "' is not a loopback address (127.0.0.0/8)";
    return false;
  }
  return true;
}

struct SendOptions {
  std::string file;
  std::string proto = "tcp";
  std::string target = "127.0.0.1:5514";
  double rate = 0;      // lines per second, 0 = unpaced
  int loops = 1;        // passes over the file
  double duration = 0;  // seconds; when set, loops until it ends
  bool octet_counting = false;
};

// A paced sender of lines to a loopback listener, or to a file. Lines come from a
// callable `next(std::string_view&) -> bool` that returns false after the last line.
class Sender {
 public:
  explicit Sender(const SendOptions& o) : o_(o), udp_(o.proto == "udp") {}
  ~Sender() {
    if (fd_ >= 0) close(fd_);
  }

  // Connects to o.target, or with `output` set, creates that file instead.
  bool open(const std::string& output, std::string& error) {
    if (!output.empty()) {
      fd_ = ::open(output.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      to_file_ = true;
      if (fd_ < 0) error = "cannot create " + output + ": " + std::strerror(errno);
      return fd_ >= 0;
    }
    sockaddr_in addr;
    if (!parseTarget(o_.target, addr, error)) return false;
    fd_ = socket(AF_INET, udp_ ? SOCK_DGRAM : SOCK_STREAM, 0);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      error = "cannot connect to " + o_.target + ": " + std::strerror(errno);
      return false;
    }
    if (udp_) {
      int sndbuf = 4 << 20;
      setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    }
    return true;
  }

  // Sends until `next` runs out or o.duration passes. Returns false after a failed
  // TCP send or file write, which it reports on stderr.
  template <typename Next>
  bool pump(Next&& next) {
    start_ = nowNs();
    const int64_t stop_at = o_.duration > 0 ? start_ + static_cast<int64_t>(o_.duration * 1e9) : 0;
    std::string buffer;
    buffer.reserve(1 << 20);
    std::vector<mmsghdr> msgs(64);
    std::vector<iovec> iovs(64);
    bool done = false;
    while (!done) {
      // Lines due by now at the target rate, sent in chunks of at most 64.
      uint64_t due = UINT64_MAX;
      if (o_.rate > 0) {
        due = static_cast<uint64_t>(static_cast<double>(nowNs() - start_) * 1e-9 * o_.rate) + 1;
        if (due <= sent_) {
          std::this_thread::sleep_for(std::chrono::microseconds(100));
          if (stop_at != 0 && nowNs() >= stop_at) break;
          continue;
        }
      }
      size_t chunk = 0;
      buffer.clear();
      std::string_view line;
      while (sent_ + chunk < due && chunk < 64) {
        if (!next(line)) {
          done = true;
          break;
        }
        if (udp_ && !to_file_) {
          iovs[chunk] = {const_cast<char*>(line.data()), line.size()};
          std::memset(&msgs[chunk], 0, sizeof(mmsghdr));
          msgs[chunk].msg_hdr.msg_iov = &iovs[chunk];
          msgs[chunk].msg_hdr.msg_iovlen = 1;
        } else {
          if (o_.octet_counting) buffer += std::to_string(line.size()) + " ";
          buffer.append(line);
          buffer.push_back('\n');
        }
        bytes_ += line.size();
        ++chunk;
      }
      if (udp_ && !to_file_) {
        sendDatagrams(msgs, chunk);
      } else if (!writeStream(buffer)) {
        return false;
      }
      sent_ += chunk;
      if (stop_at != 0 && nowNs() >= stop_at) break;
    }
    return true;
  }

  // Ends the stream (TCP: FIN after the last byte) and prints one JSON line of counts.
  void finish(const std::string& extra_json = "") {
    if (!udp_ && !to_file_) shutdown(fd_, SHUT_WR);
    close(fd_);
    fd_ = -1;
    const double secs = static_cast<double>(nowNs() - start_) / 1e9;
    std::printf("{\"proto\":\"%s\",\"sent\":%llu,\"bytes\":%llu,\"send_errors\":%llu,"
                "\"seconds\":%.3f,\"rate\":%.0f,\"target_rate\":%.0f,\"blocked_s\":%.3f%s}\n",
                to_file_ ? "file" : o_.proto.c_str(), static_cast<unsigned long long>(sent_),
                static_cast<unsigned long long>(bytes_),
                static_cast<unsigned long long>(errors_), secs,
                static_cast<double>(sent_) / secs, o_.rate,
                static_cast<double>(blocked_ns_) / 1e9, extra_json.c_str());
  }

 private:
  void sendDatagrams(std::vector<mmsghdr>& msgs, size_t chunk) {
    size_t off = 0;
    while (off < chunk) {
      int n = sendmmsg(fd_, msgs.data() + off, static_cast<unsigned>(chunk - off), 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        ++errors_;  // ECONNREFUSED or ENOBUFS: the datagram is lost, counted here
        ++off;
        continue;
      }
      off += static_cast<size_t>(n);
    }
  }

  bool writeStream(const std::string& buffer) {
    size_t off = 0;
    const int64_t t0 = nowNs();
    while (off < buffer.size()) {
      ssize_t n = to_file_ ? write(fd_, buffer.data() + off, buffer.size() - off)
                           : send(fd_, buffer.data() + off, buffer.size() - off, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        std::fprintf(stderr, "vigil_loadgen: %s failed after %llu lines: %s\n",
                     to_file_ ? "write" : "send", static_cast<unsigned long long>(sent_),
                     std::strerror(errno));
        return false;
      }
      off += static_cast<size_t>(n);
    }
    const int64_t spent = nowNs() - t0;
    if (spent > 1'000'000) blocked_ns_ += spent;  // TCP: time inside send() beyond a quick copy
    return true;
  }

  const SendOptions& o_;
  const bool udp_;
  bool to_file_ = false;
  int fd_ = -1;
  uint64_t sent_ = 0, errors_ = 0, bytes_ = 0;
  int64_t blocked_ns_ = 0;
  int64_t start_ = 0;
};

int runSend(const SendOptions& o) {
  int fd = open(o.file.c_str(), O_RDONLY);
  if (fd < 0) {
    std::fprintf(stderr, "vigil_loadgen send: cannot open %s: %s\n", o.file.c_str(),
                 std::strerror(errno));
    return 2;
  }
  struct stat st;
  fstat(fd, &st);
  const size_t size = static_cast<size_t>(st.st_size);
  const char* data = size > 0 ? static_cast<const char*>(
                                    mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0))
                              : nullptr;
  std::vector<std::string_view> lines;
  for (size_t pos = 0; pos < size;) {
    const char* nl = static_cast<const char*>(std::memchr(data + pos, '\n', size - pos));
    size_t end = nl ? static_cast<size_t>(nl - data) : size;
    if (end > pos) lines.emplace_back(data + pos, end - pos);
    pos = end + 1;
  }
  if (lines.empty()) {
    std::fprintf(stderr, "vigil_loadgen send: %s has no lines\n", o.file.c_str());
    return 2;
  }
  Sender sender(o);
  std::string error;
  if (!sender.open("", error)) {
    std::fprintf(stderr, "vigil_loadgen send: %s\n", error.c_str());
    return error.starts_with("cannot connect") ? 1 : 2;
  }
  size_t index = 0;
  int loop = 0;
  const bool forever = o.duration > 0;
  auto next = [&](std::string_view& line) {
    if (!forever && loop >= o.loops) return false;
    line = lines[index];
    if (++index == lines.size()) {
      index = 0;
      ++loop;
    }
    return true;
  };
  if (!sender.pump(next)) return 1;
  sender.finish();
  return 0;
}

struct StreamOptions {
  uint64_t segment_events = 250'000;
  uint64_t events = 0;  // 0: until --duration ends
  std::string output;   // a file instead of a socket
  std::string truth;
};

// Generates a segmented run on the fly and sends it; the next segment is generated on a
// second thread while the current one is sent. Writes the ground truth of the lines sent.
int runStream(const vigil::bench::WorkloadOptions& w, const StreamOptions& so,
              const SendOptions& o) {
  if (so.events == 0 && o.duration <= 0) {
    std::fprintf(stderr, "vigil_loadgen stream: set --events, --duration or both\n");
    return 2;
  }
  vigil::bench::SegmentedWorkload workload(w, so.segment_events);
  if (workload.maxSegments() == 0) {
    std::fprintf(stderr,
                 "vigil_loadgen stream: one segment of %llu events spans more than 150 days "
                 "of event time at --event-rate %g; lower --segment-events or raise "
                 "--event-rate\n",
                 static_cast<unsigned long long>(so.segment_events), w.event_rate);
    return 2;
  }
  vigil::bench::RunTruth truth(workload);
  Sender sender(o);
  std::string error;
  if (!sender.open(so.output, error)) {
    std::fprintf(stderr, "vigil_loadgen stream: %s\n", error.c_str());
    return error.starts_with("cannot connect") ? 1 : 2;
  }
  auto generate = [&workload](uint64_t index) { return workload.generate(index); };
  vigil::bench::Segment current = workload.generate(0);
  std::future<vigil::bench::Segment> upcoming = std::async(std::launch::async, generate, 1);
  size_t line = 0;
  uint64_t handed_out = 0;
  bool out_of_time = false;
  auto next = [&](std::string_view& text) {
    if (so.events != 0 && handed_out >= so.events) return false;
    if (line == current.line_ends.size()) {
      truth.add(current, line);
      if (current.index + 1 >= workload.maxSegments()) {
        out_of_time = true;
        line = 0;
        current.line_ends.clear();
        return false;
      }
      current = upcoming.get();
      upcoming = std::async(std::launch::async, generate, current.index + 1);
      line = 0;
    }
    const size_t begin = line == 0 ? 0 : current.line_ends[line - 1];
    // Without the '\n': the sender frames each line itself.
    text = std::string_view(current.text).substr(begin, current.line_ends[line] - begin - 1);
    ++line;
    ++handed_out;
    return true;
  };
  const bool ok = sender.pump(next);
  if (line > 0) truth.add(current, line);
  upcoming.wait();
  if (!so.truth.empty() && !truth.write(so.truth, error)) {
    std::fprintf(stderr, "vigil_loadgen stream: %s\n", error.c_str());
    return 1;
  }
  sender.finish(",\"segments_started\":" + std::to_string(current.index + 1));
  if (out_of_time) {
    std::fprintf(stderr,
                 "vigil_loadgen stream: stopped after %llu segments, where event time reaches "
                 "150 days past the start; raise --event-rate or --segment-events for a "
                 "longer run\n",
                 static_cast<unsigned long long>(workload.maxSegments()));
    return 1;
  }
  return ok ? 0 : 1;
}

// Adds the options that shape the traffic, shared by `gen` and `stream`. The event count
// is separate, because it is the file's size in one and the segment's size in the other.
void addWorkloadOptions(CLI::App* sub, vigil::bench::WorkloadOptions& w) {
  sub->add_option("--workload", w.workload, "W1 (parse only), W2, W3 or W4")
      ->check(CLI::IsMember({"W1", "W2", "W3", "W4"}));
  sub->add_option("--seed", w.seed, "Random seed; the same seed writes the same events");
  sub->add_option("--event-rate", w.event_rate, "Events per second of event time")
      ->check(CLI::Range(1.0, 1e7));
  sub->add_option("--bruteforce-per-million", w.bruteforce_per_million,
                  "SSH brute-force bursts per million events")->check(CLI::Range(0.0, 50000.0));
  sub->add_option("--scans-per-million", w.scans_per_million, "Port scans per million events")
      ->check(CLI::Range(0.0, 20000.0));
  sub->add_option("--beacons-per-million", w.beacons_per_million,
                  "Beaconing hosts per million events")->check(CLI::Range(0.0, 20000.0));
  sub->add_option("--privesc-per-million", w.privesc_per_million,
                  "Logon-then-privilege sequences per million events")
      ->check(CLI::Range(0.0, 50000.0));
  sub->add_option("--ioc-fraction", w.ioc_fraction,
                  "Fraction of background events that carry an indicator (W3, W4)")
      ->check(CLI::Range(0.0, 0.5));
  sub->add_option("--tenants", w.tenants, "Tenants")->check(CLI::Range(1u, 99u));
  sub->add_option("--ip-indicators", w.ip_indicators,
                  "Indicator addresses (default 10k for W3, 500k for W4)")
      ->check(CLI::Range(1ULL, 10'000'000ULL));
  sub->add_option("--domain-indicators", w.domain_indicators,
                  "Indicator domains (default 10k for W3, 500k for W4)")
      ->check(CLI::Range(1ULL, 10'000'000ULL));
  sub->add_option("--rules", w.rules, "Rule documents in W3/W4 (default 101 and 500)")
      ->check(CLI::Range(10u, 100000u));
}

void addSendOptions(CLI::App* sub, SendOptions& s) {
  sub->add_option("--proto", s.proto, "udp or tcp")->check(CLI::IsMember({"udp", "tcp"}));
  sub->add_option("--target", s.target, "IPv4:PORT on 127.0.0.0/8");
  sub->add_option("--rate", s.rate, "Lines per second; 0 sends as fast as possible")
      ->check(CLI::Range(0.0, 1e9));
  sub->add_flag("--octet-counting", s.octet_counting, "TCP: RFC 6587 octet-counting frames");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vigil_loadgen: deterministic traffic for the Vigil end-to-end benchmark"};
  app.require_subcommand(1);

  vigil::bench::WorkloadOptions w;
  std::string out;
  bool pcap = false;
  auto* gen = app.add_subcommand("gen", "Write events, rules, indicators and ground truth");
  addWorkloadOptions(gen, w);
  gen->add_option("--events", w.events, "Events to write")->check(CLI::Range(1ULL, 500'000'000ULL));
  gen->add_option("--out", out, "Output folder")->required();
  gen->add_flag("--pcap", pcap, "Also write events.pcap (UDP to port 514) for net_pcap");

  SendOptions s;
  auto* send = app.add_subcommand("send", "Send the lines of a file to a loopback listener");
  send->add_option("--file", s.file, "File of lines (events.log)")->required();
  addSendOptions(send, s);
  send->add_option("--loops", s.loops, "Passes over the file")->check(CLI::Range(1, 1000000));
  send->add_option("--duration", s.duration, "Seconds to send for, looping over the file")
      ->check(CLI::Range(0.0, 86400.0));

  StreamOptions so;
  auto* stream = app.add_subcommand(
      "stream", "Generate a run of any length on the fly, send it and write its ground truth");
  addWorkloadOptions(stream, w);
  addSendOptions(stream, s);
  stream->add_option("--segment-events", so.segment_events,
                     "Events per segment; segment 0 equals `gen --events` of this size")
      ->check(CLI::Range(1ULL, 50'000'000ULL));
  stream->add_option("--events", so.events, "Events to send in all; 0 sends until --duration")
      ->check(CLI::Range(0ULL, 1'000'000'000'000ULL));
  stream->add_option("--duration", s.duration, "Seconds to send for; 0 sends until --events")
      ->check(CLI::Range(0.0, 86400.0 * 30));
  stream->add_option("--output", so.output, "Write the lines to this file, not to --target");
  stream->add_option("--truth", so.truth, "Write the ground truth of the lines sent here");

  CLI11_PARSE(app, argc, argv);
  if (gen->parsed()) {
    std::string error;
    if (!vigil::bench::generateWorkload(w, out, pcap, error)) {
      std::fprintf(stderr, "vigil_loadgen gen: %s\n", error.c_str());
      return 1;
    }
    return 0;
  }
  if (stream->parsed()) return runStream(w, so, s);
  return runSend(s);
}
