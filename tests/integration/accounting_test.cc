// Event accounting of the built vigild: a known mix of valid, unparseable, oversize and
// empty messages goes in through a file, UDP and TCP, and /metrics must account for every
// one of them. docs/architecture.md lists the identities checked here.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "daemon_process.h"

namespace vigil::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr size_t kMaxMessageBytes = 256;

sockaddr_in loopback(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

// Sends each message as one datagram, pausing every 4 datagrams so that the kernel's
// receive buffer is unlikely to overflow and the exact per-tenant counts below hold.
void sendDatagrams(int port, const std::vector<std::string>& messages) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr = loopback(port);
  for (size_t i = 0; i < messages.size(); ++i) {
    ssize_t n = sendto(fd, messages[i].data(), messages[i].size(), 0,
                       reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    EXPECT_EQ(n, static_cast<ssize_t>(messages[i].size())) << "datagram " << i;
    if (i % 4 == 3) std::this_thread::sleep_for(milliseconds(2));
  }
  close(fd);
}

void sendStream(int port, const std::string& stream) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr = loopback(port);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0)
      << "connect to 127.0.0.1:" << port << " failed";
  size_t sent = 0;
  while (sent < stream.size()) {
    ssize_t n = send(fd, stream.data() + sent, stream.size() - sent, 0);
    ASSERT_GT(n, 0) << "send failed after " << sent << " bytes";
    sent += static_cast<size_t>(n);
  }
  close(fd);
}

// One series of the Prometheus text: name{labels} value.
struct Series {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

std::vector<Series> parseMetrics(const std::string& text) {
  std::vector<Series> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    Series s;
    size_t value_at = line.rfind(' ');
    if (value_at == std::string::npos) continue;
    s.value = std::stod(line.substr(value_at + 1));
    std::string head = line.substr(0, value_at);
    size_t brace = head.find('{');
    s.name = head.substr(0, brace);
    if (brace != std::string::npos) {
      // Label values in these tests contain no quotes, commas or escapes.
      std::string body = head.substr(brace + 1, head.size() - brace - 2);
      std::istringstream pairs(body);
      std::string pair;
      while (std::getline(pairs, pair, ',')) {
        size_t eq = pair.find('=');
        s.labels[pair.substr(0, eq)] = pair.substr(eq + 2, pair.size() - eq - 3);
      }
    }
    out.push_back(std::move(s));
  }
  return out;
}

// Sums the series of `name` whose labels include every pair of `match`.
uint64_t sum(const std::vector<Series>& series, const std::string& name,
             const std::map<std::string, std::string>& match = {}) {
  double total = 0;
  for (const Series& s : series) {
    if (s.name != name) continue;
    bool all = true;
    for (const auto& [key, value] : match) {
      auto it = s.labels.find(key);
      all = all && it != s.labels.end() && it->second == value;
    }
    if (all) total += s.value;
  }
  return static_cast<uint64_t>(total);
}

bool hasSeries(const std::vector<Series>& series, const std::string& name,
               const std::map<std::string, std::string>& labels) {
  for (const Series& s : series) {
    if (s.name == name && s.labels == labels) return true;
  }
  return false;
}

// The messages one source is offered, by kind, and how many of each.
struct Mix {
  int web = 0;       // valid RFC 3164, host web1: stays in the source's or the CIDR tenant
  int globex = 0;    // valid RFC 3164, host db.globex.example: the globex field rule
  int garbage = 0;   // no known format: a parse error, kept as a raw event
  int oversize = 0;  // valid but longer than max_message_bytes: truncated
  int empty = 0;     // empty line (dropped as empty) or empty datagram (received)

  int offered() const { return web + globex + garbage + oversize + empty; }
};

std::vector<std::string> messages(const Mix& mix) {
  std::vector<std::string> out;
  for (int i = 0; i < mix.web; ++i) {
    out.push_back(
        "<38>Oct 11 22:14:15 web1 sshd[42]: Accepted password for bob from "
        "198.51.100.7 port " +
        std::to_string(40000 + i) + " ssh2");
  }
  for (int i = 0; i < mix.globex; ++i) {
    out.push_back("<14>Oct 11 22:14:16 db.globex.example app[7]: job " + std::to_string(i) +
                  " done");
  }
  for (int i = 0; i < mix.garbage; ++i) out.push_back("\x01\x02 garbage " + std::to_string(i));
  for (int i = 0; i < mix.oversize; ++i) {
    out.push_back("<14>Oct 11 22:14:17 web1 app[7]: " + std::string(kMaxMessageBytes * 2, 'x'));
  }
  for (int i = 0; i < mix.empty; ++i) out.push_back("");
  return out;
}

std::string lines(const Mix& mix) {
  std::string text;
  for (const std::string& m : messages(mix)) text += m + "\n";
  return text;
}

class AccountingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = makeTempDir("vigil-acct");
    udp_port_ = freePort(SOCK_DGRAM);
    tcp_port_ = freePort(SOCK_STREAM);
    api_port_ = freePort(SOCK_STREAM);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::vector<Series> metrics() {
    httplib::Client client("127.0.0.1", api_port_);
    auto res = client.Get("/metrics");
    return res && res->status == 200 ? parseMetrics(res->body) : std::vector<Series>{};
  }

  std::string dir_;
  int udp_port_ = 0;
  int tcp_port_ = 0;
  int api_port_ = 0;
};

// Every offered message is received or dropped by its source, every received one is
// parsed or a parse error, and each lands in exactly one tenant.
TEST_F(AccountingTest, CountersAccountForEveryMessage) {
  const Mix file_mix{.web = 5, .globex = 3, .garbage = 2, .oversize = 2, .empty = 3};
  const Mix udp_mix{.web = 6, .globex = 2, .garbage = 3, .oversize = 2, .empty = 1};
  const Mix tcp_mix{.web = 4, .globex = 4, .garbage = 2, .oversize = 3, .empty = 2};
  writeFile(dir_ + "/replay.log", lines(file_mix));
  const std::string bytes = std::to_string(kMaxMessageBytes);
  writeFile(dir_ + "/vigil.yaml",
            "state_dir: " + dir_ +
                "/state\n"
                "sources:\n"
                "  - {name: replay, type: file, tenant: replay, path: replay.log, "
                "max_message_bytes: " +
                bytes +
                "}\n"
                "  - {name: udp, type: udp, listen: '127.0.0.1:" +
                std::to_string(udp_port_) + "', max_message_bytes: " + bytes +
                "}\n"
                "  - {name: tcp, type: tcp, framing: lf, listen: '127.0.0.1:" +
                std::to_string(tcp_port_) + "', max_message_bytes: " + bytes +
                "}\n"
                "tenants:\n"
                "  - {field: host.name, suffix: .globex.example, tenant: globex}\n"
                "  - {cidr: 127.0.0.0/8, tenant: loopback}\n"
                "  - {vlan: 12, tenant: lab}\n"
                "api: {listen: '127.0.0.1:" +
                std::to_string(api_port_) + "'}\n");

  DaemonProcess daemon({"--config", dir_ + "/vigil.yaml"}, dir_ + "/vigild.log");
  httplib::Client client("127.0.0.1", api_port_);
  auto deadline = std::chrono::steady_clock::now() + seconds(20);
  bool up = false;
  while (!up && std::chrono::steady_clock::now() < deadline) {
    auto res = client.Get("/healthz");
    up = res && res->status == 200;
    if (!up) std::this_thread::sleep_for(milliseconds(50));
  }
  ASSERT_TRUE(up) << daemon.log();

  sendDatagrams(udp_port_, messages(udp_mix));
  sendStream(tcp_port_, lines(tcp_mix));

  const std::map<std::string, int> offered = {
      {"replay", file_mix.offered()}, {"udp", udp_mix.offered()}, {"tcp", tcp_mix.offered()}};
  // Waits until the sources have seen every message and the pipeline has finished them.
  std::vector<Series> m;
  deadline = std::chrono::steady_clock::now() + seconds(20);
  bool settled = false;
  while (!settled && std::chrono::steady_clock::now() < deadline) {
    m = metrics();
    settled = true;
    for (const auto& [source, count] : offered) {
      settled = settled && sum(m, "vigil_source_received_total", {{"source", source}}) +
                                   sum(m, "vigil_source_dropped_total", {{"source", source}}) ==
                               static_cast<uint64_t>(count);
    }
    settled = settled &&
              sum(m, "vigil_pipeline_events_total") ==
                  sum(m, "vigil_pipeline_events_done_total") +
                      sum(m, "vigil_pipeline_oversize_dropped_total") &&
              sum(m, "vigil_pipeline_events_total") == sum(m, "vigil_source_received_total");
    if (!settled) std::this_thread::sleep_for(milliseconds(50));
  }
  ASSERT_TRUE(settled) << daemon.log();

  // Per source: received + dropped == offered, with the drops where they are expected.
  for (const auto& [source, count] : offered) {
    EXPECT_EQ(sum(m, "vigil_source_received_total", {{"source", source}}) +
                  sum(m, "vigil_source_dropped_total", {{"source", source}}),
              static_cast<uint64_t>(count))
        << source;
  }
  EXPECT_EQ(sum(m, "vigil_source_dropped_total", {{"source", "replay"}, {"reason", "empty"}}),
            static_cast<uint64_t>(file_mix.empty));
  EXPECT_EQ(sum(m, "vigil_source_dropped_total", {{"source", "tcp"}, {"reason", "empty"}}),
            static_cast<uint64_t>(tcp_mix.empty));
  // An empty datagram is still a message: UDP has no framing that could drop it.
  EXPECT_EQ(sum(m, "vigil_source_dropped_total", {{"source", "udp"}}), 0u);
  EXPECT_EQ(sum(m, "vigil_source_received_total", {{"source", "udp"}}),
            static_cast<uint64_t>(udp_mix.offered()));

  // Pipeline: everything received was analyzed, and parsed + parse_errors == received.
  const uint64_t received = sum(m, "vigil_source_received_total");
  const uint64_t expected_received = static_cast<uint64_t>(
      file_mix.offered() - file_mix.empty + udp_mix.offered() + tcp_mix.offered() - tcp_mix.empty);
  EXPECT_EQ(received, expected_received);
  EXPECT_EQ(sum(m, "vigil_pipeline_events_total"), received);
  EXPECT_EQ(sum(m, "vigil_pipeline_oversize_dropped_total"), 0u);
  EXPECT_EQ(sum(m, "vigil_pipeline_events_done_total"), received);
  EXPECT_EQ(sum(m, "vigil_events_parsed_total") + sum(m, "vigil_parse_errors_total"), received);
  EXPECT_GE(sum(m, "vigil_parse_errors_total"),
            static_cast<uint64_t>(file_mix.garbage + udp_mix.garbage + tcp_mix.garbage));

  // Truncation is counted once at the source and again on the event flag.
  const auto oversize =
      static_cast<uint64_t>(file_mix.oversize + udp_mix.oversize + tcp_mix.oversize);
  EXPECT_EQ(sum(m, "vigil_source_truncated_total"), oversize);
  EXPECT_EQ(sum(m, "vigil_events_truncated_total"), oversize);

  // Tenants: the field rule comes first, then the CIDR rule catches the network sources,
  // and the file source's other events keep its own tenant.
  EXPECT_EQ(sum(m, "vigil_tenant_events_total"), received);
  EXPECT_EQ(sum(m, "vigil_tenant_events_total", {{"tenant", "globex"}}),
            static_cast<uint64_t>(file_mix.globex + udp_mix.globex + tcp_mix.globex));
  EXPECT_EQ(sum(m, "vigil_tenant_events_total", {{"tenant", "replay"}}),
            static_cast<uint64_t>(file_mix.offered() - file_mix.empty - file_mix.globex));
  EXPECT_EQ(sum(m, "vigil_tenant_events_total", {{"tenant", "loopback"}}),
            static_cast<uint64_t>(udp_mix.offered() - udp_mix.globex + tcp_mix.offered() -
                                  tcp_mix.empty - tcp_mix.globex));
  EXPECT_EQ(sum(m, "vigil_tenant_events_total", {{"tenant", "lab"}}), 0u);
  // Every configured tenant is exported from the start, even without events.
  EXPECT_TRUE(hasSeries(m, "vigil_tenant_events_total", {{"tenant", "default"}}));
  EXPECT_TRUE(hasSeries(m, "vigil_tenant_events_total", {{"tenant", "lab"}}));

  EXPECT_EQ(daemon.stop(), 0) << daemon.log();
}

}  // namespace
}  // namespace vigil::testing
