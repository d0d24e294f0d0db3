// vigil_loadgen: the traffic generator of the end-to-end benchmark (bench/e2e.sh).
//
//   vigil_loadgen gen --workload W2 --seed 42 --events 1000000 --out DIR [--pcap]
//     writes DIR/events.log, DIR/rules/, DIR/intel/ and DIR/truth.json (the alerts each
//     rule must raise, derived from what was injected).
//   vigil_loadgen send --file DIR/events.log --proto tcp --target 127.0.0.1:5514 --rate 100000
//     sends the lines to a loopback listener at a target rate (0 = as fast as possible)
//     and prints one JSON line: lines sent, seconds, achieved rate, send errors.
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
  sockaddr_in addr;
  std::string error;
  if (!parseTarget(o.target, addr, error)) {
    std::fprintf(stderr, "vigil_loadgen send: %s\n", error.c_str());
    return 2;
  }
  const bool udp = o.proto == "udp";
  int sock = socket(AF_INET, udp ? SOCK_DGRAM : SOCK_STREAM, 0);
  if (connect(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::fprintf(stderr, "vigil_loadgen send: cannot connect to %s: %s\n", o.target.c_str(),
                 std::strerror(errno));
    return 1;
  }
  if (udp) {
    int sndbuf = 4 << 20;
    setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  }

  uint64_t sent = 0, errors = 0, bytes = 0;
  int64_t blocked_ns = 0;  // TCP: time spent inside send() beyond a quick copy
  const int64_t start = nowNs();
  const int64_t stop_at = o.duration > 0 ? start + static_cast<int64_t>(o.duration * 1e9) : 0;
  std::string buffer;
  buffer.reserve(1 << 20);
  std::vector<mmsghdr> msgs(64);
  std::vector<iovec> iovs(64);
  size_t index = 0;
  int loop = 0;
  bool done = false;
  while (!done) {
    // Lines due by now at the target rate, sent in chunks of at most 64 (UDP) or 256 KiB.
    uint64_t due = UINT64_MAX;
    if (o.rate > 0) {
      due = static_cast<uint64_t>(static_cast<double>(nowNs() - start) * 1e-9 * o.rate) + 1;
      if (due <= sent) {
        std::this_thread::sleep_for(std::chrono::microseconds(100));
        if (stop_at != 0 && nowNs() >= stop_at) break;
        continue;
      }
    }
    size_t chunk = 0;
    buffer.clear();
    while (sent + chunk < due && chunk < 64 && !done) {
      std::string_view line = lines[index];
      if (udp) {
        iovs[chunk] = {const_cast<char*>(line.data()), line.size()};
        std::memset(&msgs[chunk], 0, sizeof(mmsghdr));
        msgs[chunk].msg_hdr.msg_iov = &iovs[chunk];
        msgs[chunk].msg_hdr.msg_iovlen = 1;
      } else {
        if (o.octet_counting) buffer += std::to_string(line.size()) + " ";
        buffer.append(line);
        buffer.push_back('\n');
      }
      bytes += line.size();
      ++chunk;
      if (++index == lines.size()) {
        index = 0;
        ++loop;
        if (stop_at == 0 && loop >= o.loops) done = true;
      }
    }
    if (udp) {
      size_t off = 0;
      while (off < chunk) {
        int n = sendmmsg(sock, msgs.data() + off, static_cast<unsigned>(chunk - off), 0);
        if (n < 0) {
          if (errno == EINTR) continue;
          ++errors;  // ECONNREFUSED or ENOBUFS: the datagram is lost, counted here
          ++off;
          continue;
        }
        off += static_cast<size_t>(n);
      }
    } else {
      size_t off = 0;
      const int64_t t0 = nowNs();
      while (off < buffer.size()) {
        ssize_t n = send(sock, buffer.data() + off, buffer.size() - off, MSG_NOSIGNAL);
        if (n < 0) {
          if (errno == EINTR) continue;
          std::fprintf(stderr, "vigil_loadgen send: send failed after %llu lines: %s\n",
                       static_cast<unsigned long long>(sent), std::strerror(errno));
          return 1;
        }
        off += static_cast<size_t>(n);
      }
      const int64_t spent = nowNs() - t0;
      if (spent > 1'000'000) blocked_ns += spent;
    }
    sent += chunk;
    if (stop_at != 0 && nowNs() >= stop_at) break;
  }
  if (!udp) shutdown(sock, SHUT_WR);
  close(sock);
  const double secs = static_cast<double>(nowNs() - start) / 1e9;
  std::printf("{\"proto\":\"%s\",\"sent\":%llu,\"bytes\":%llu,\"send_errors\":%llu,"
              "\"seconds\":%.3f,\"rate\":%.0f,\"target_rate\":%.0f,\"blocked_s\":%.3f}\n",
              o.proto.c_str(), static_cast<unsigned long long>(sent),
              static_cast<unsigned long long>(bytes), static_cast<unsigned long long>(errors),
              secs, static_cast<double>(sent) / secs, o.rate,
              static_cast<double>(blocked_ns) / 1e9);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vigil_loadgen: deterministic traffic for the Vigil end-to-end benchmark"};
  app.require_subcommand(1);

  vigil::bench::WorkloadOptions w;
  std::string out;
  bool pcap = false;
  auto* gen = app.add_subcommand("gen", "Write events, rules, indicators and ground truth");
  gen->add_option("--workload", w.workload, "W1 (parse only), W2, W3 or W4")
      ->check(CLI::IsMember({"W1", "W2", "W3", "W4"}));
  gen->add_option("--seed", w.seed, "Random seed; the same seed writes the same files");
  gen->add_option("--events", w.events, "Events to write")->check(CLI::Range(1ULL, 500'000'000ULL));
  gen->add_option("--out", out, "Output folder")->required();
  gen->add_option("--event-rate", w.event_rate, "Events per second of event time")
      ->check(CLI::Range(1.0, 1e7));
  gen->add_option("--bruteforce-per-million", w.bruteforce_per_million,
                  "SSH brute-force bursts per million events")->check(CLI::Range(0.0, 50000.0));
  gen->add_option("--scans-per-million", w.scans_per_million, "Port scans per million events")
      ->check(CLI::Range(0.0, 20000.0));
  gen->add_option("--beacons-per-million", w.beacons_per_million,
                  "Beaconing hosts per million events")->check(CLI::Range(0.0, 20000.0));
  gen->add_option("--privesc-per-million", w.privesc_per_million,
                  "Logon-then-privilege sequences per million events")
      ->check(CLI::Range(0.0, 50000.0));
  gen->add_option("--ioc-fraction", w.ioc_fraction,
                  "Fraction of background events that carry an indicator (W3, W4)")
      ->check(CLI::Range(0.0, 0.5));
  gen->add_option("--tenants", w.tenants, "Tenants")->check(CLI::Range(1u, 99u));
  gen->add_option("--ip-indicators", w.ip_indicators,
                  "Indicator addresses (default 10k for W3, 500k for W4)")
      ->check(CLI::Range(1ULL, 10'000'000ULL));
  gen->add_option("--domain-indicators", w.domain_indicators,
                  "Indicator domains (default 10k for W3, 500k for W4)")
      ->check(CLI::Range(1ULL, 10'000'000ULL));
  gen->add_option("--rules", w.rules, "Rule documents in W3/W4 (default 101 and 500)")
      ->check(CLI::Range(10u, 100000u));
  gen->add_flag("--pcap", pcap, "Also write events.pcap (UDP to port 514) for net_pcap");

  SendOptions s;
  auto* send = app.add_subcommand("send", "Send the lines of a file to a loopback listener");
  send->add_option("--file", s.file, "File of lines (events.log)")->required();
  send->add_option("--proto", s.proto, "udp or tcp")->check(CLI::IsMember({"udp", "tcp"}));
  send->add_option("--target", s.target, "IPv4:PORT on 127.0.0.0/8");
  send->add_option("--rate", s.rate, "Lines per second; 0 sends as fast as possible")
      ->check(CLI::Range(0.0, 1e9));
  send->add_option("--loops", s.loops, "Passes over the file")->check(CLI::Range(1, 1000000));
  send->add_option("--duration", s.duration, "Seconds to send for, looping over the file")
      ->check(CLI::Range(0.0, 86400.0));
  send->add_flag("--octet-counting", s.octet_counting, "TCP: RFC 6587 octet-counting frames");

  CLI11_PARSE(app, argc, argv);
  if (gen->parsed()) {
    std::string error;
    if (!vigil::bench::generateWorkload(w, out, pcap, error)) {
      std::fprintf(stderr, "vigil_loadgen gen: %s\n", error.c_str());
      return 1;
    }
    return 0;
  }
  return runSend(s);
}
