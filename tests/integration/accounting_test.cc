// Event accounting of the built vigild: a known mix of valid, unparseable, oversize, empty
// and over-quota messages goes in through a file, UDP, TCP and TLS, and /metrics must
// account for every one of them. docs/architecture.md lists the identities checked here.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
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
// The `limited` tenant's bucket: a refill of one event per 1000 s, so during the test
// exactly kQuotaBurst of its events are admitted and the rest are dropped.
constexpr int kQuotaBurst = 3;

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

// Writes a self-signed certificate for 127.0.0.1 and its key into `dir` with the openssl
// command. Returns false when the command fails (its output is in dir/openssl.log).
bool makeCertificate(const std::string& dir) {
  const std::string command =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
      "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout " +
      dir + "/server.key -out " + dir + "/server.pem >" + dir + "/openssl.log 2>&1";
  return std::system(command.c_str()) == 0;
}

// Sends `stream` over TLS through "openssl s_client", which closes the connection with
// close_notify at the end of its input. Returns the client's exit status.
int sendTlsStream(int port, const std::string& stream, const std::string& dir) {
  const std::string command = "openssl s_client -connect 127.0.0.1:" + std::to_string(port) +
                              " -quiet -no_ign_eof >" + dir + "/s_client.log 2>&1";
  FILE* client = popen(command.c_str(), "w");
  if (client == nullptr) return -1;
  fwrite(stream.data(), 1, stream.size(), client);
  int status = pclose(client);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
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

// The counters this test checks. /metrics reads them one at a time, in name order, while
// the workers keep adding. So a scrape taken while the last batch goes through can read
// vigil_events_delivered_total before that batch is counted and
// vigil_pipeline_events_done_total after it.
const char* const kCheckedCounters[] = {
    "vigil_source_received_total",
    "vigil_source_dropped_total",
    "vigil_source_truncated_total",
    "vigil_source_discarded_bytes_total",
    "vigil_pipeline_events_total",
    "vigil_pipeline_events_done_total",
    "vigil_pipeline_oversize_dropped_total",
    "vigil_events_parsed_total",
    "vigil_parse_errors_total",
    "vigil_events_truncated_total",
    "vigil_events_delivered_total",
    "vigil_events_dropped_total",
    "vigil_tenant_events_total",
};

// Returns true when every checked counter has the same value in both scrapes.
bool sameCheckedCounters(const std::vector<Series>& a, const std::vector<Series>& b) {
  auto values = [](const std::vector<Series>& series) {
    std::map<std::pair<std::string, std::map<std::string, std::string>>, double> out;
    for (const Series& s : series) {
      for (const char* name : kCheckedCounters) {
        if (s.name == name) out[{s.name, s.labels}] = s.value;
      }
    }
    return out;
  };
  return values(a) == values(b);
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
  int empty = 0;     // empty line or empty datagram: dropped as empty by the source
  int limited = 0;   // valid RFC 3164, host burst.example: the `limited` tenant's quota

  int offered() const { return web + globex + garbage + oversize + empty + limited; }
  int received() const { return offered() - empty; }
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
  for (int i = 0; i < mix.limited; ++i) {
    out.push_back("<14>Oct 11 22:14:18 burst.example app[9]: burst " + std::to_string(i));
  }
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
    tls_port_ = freePort(SOCK_STREAM);
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
  int tls_port_ = 0;
  int api_port_ = 0;
};

// Every offered message is received or dropped by its source, every received one is
// parsed or a parse error, each lands in exactly one tenant, and each analyzed event is
// delivered to correlation or dropped by its tenant's quota.
TEST_F(AccountingTest, CountersAccountForEveryMessage) {
  const Mix file_mix{.web = 5, .globex = 3, .garbage = 2, .oversize = 2, .empty = 3, .limited = 2};
  const Mix udp_mix{.web = 6, .globex = 2, .garbage = 3, .oversize = 2, .empty = 1, .limited = 2};
  const Mix tcp_mix{.web = 4, .globex = 4, .garbage = 2, .oversize = 3, .empty = 2, .limited = 2};
  const Mix tls_mix{.web = 3, .globex = 2, .garbage = 2, .oversize = 2, .empty = 2, .limited = 2};
  ASSERT_TRUE(makeCertificate(dir_)) << readFile(dir_ + "/openssl.log");
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
                "  - {name: tls, type: tls, framing: lf, listen: '127.0.0.1:" +
                std::to_string(tls_port_) + "', max_message_bytes: " + bytes +
                ", certificate: server.pem, private_key: server.key}\n"
                "tenants:\n"
                "  - {field: host.name, equals: burst.example, tenant: limited}\n"
                "  - {field: host.name, suffix: .globex.example, tenant: globex}\n"
                "  - {cidr: 127.0.0.0/8, tenant: loopback}\n"
                "  - {vlan: 12, tenant: lab}\n"
                "tenant_quotas:\n"
                "  - {tenant: limited, max_events_per_second: 0.001, burst: " +
                std::to_string(kQuotaBurst) +
                "}\n"
                "api: {listen: '127.0.0.1:" +
                std::to_string(api_port_) + "', metrics_public_on_loopback: true}\n");

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
  EXPECT_EQ(sendTlsStream(tls_port_, lines(tls_mix), dir_), 0) << readFile(dir_ + "/s_client.log");

  const std::map<std::string, Mix> mixes = {
      {"replay", file_mix}, {"udp", udp_mix}, {"tcp", tcp_mix}, {"tls", tls_mix}};
  // Waits until the sources have seen every message and the pipeline has finished them.
  // Two scrapes in a row must also agree on every checked counter, which rules out a
  // scrape that read some counters in the middle of a batch.
  std::vector<Series> m;
  std::vector<Series> previous;
  deadline = std::chrono::steady_clock::now() + seconds(20);
  bool settled = false;
  while (!settled && std::chrono::steady_clock::now() < deadline) {
    previous = std::move(m);
    m = metrics();
    settled = !m.empty() && sameCheckedCounters(m, previous);
    for (const auto& [source, mix] : mixes) {
      settled = settled && sum(m, "vigil_source_received_total", {{"source", source}}) +
                                   sum(m, "vigil_source_dropped_total", {{"source", source}}) ==
                               static_cast<uint64_t>(mix.offered());
    }
    settled = settled &&
              sum(m, "vigil_pipeline_events_total") ==
                  sum(m, "vigil_pipeline_events_done_total") +
                      sum(m, "vigil_pipeline_oversize_dropped_total") &&
              sum(m, "vigil_pipeline_events_total") == sum(m, "vigil_source_received_total");
    if (!settled) std::this_thread::sleep_for(milliseconds(50));
  }
  ASSERT_TRUE(settled) << daemon.log();

  // Per source: received + dropped == offered, and the only drops are the empty messages.
  uint64_t expected_received = 0;
  for (const auto& [source, mix] : mixes) {
    EXPECT_EQ(sum(m, "vigil_source_received_total", {{"source", source}}),
              static_cast<uint64_t>(mix.received()))
        << source;
    EXPECT_EQ(sum(m, "vigil_source_dropped_total", {{"source", source}, {"reason", "empty"}}),
              static_cast<uint64_t>(mix.empty))
        << source;
    EXPECT_EQ(sum(m, "vigil_source_dropped_total", {{"source", source}}),
              static_cast<uint64_t>(mix.empty))
        << source;
    EXPECT_EQ(sum(m, "vigil_source_truncated_total", {{"source", source}}),
              static_cast<uint64_t>(mix.oversize))
        << source;
    EXPECT_EQ(sum(m, "vigil_source_discarded_bytes_total", {{"source", source}}), 0u) << source;
    expected_received += static_cast<uint64_t>(mix.received());
  }

  // Pipeline: everything received was analyzed, and parsed + parse_errors == received.
  const uint64_t received = sum(m, "vigil_source_received_total");
  EXPECT_EQ(received, expected_received);
  EXPECT_EQ(sum(m, "vigil_pipeline_events_total"), received);
  EXPECT_EQ(sum(m, "vigil_pipeline_oversize_dropped_total"), 0u);
  EXPECT_EQ(sum(m, "vigil_pipeline_events_done_total"), received);
  EXPECT_EQ(sum(m, "vigil_events_parsed_total") + sum(m, "vigil_parse_errors_total"), received);

  // Per source, over all tenants: the post-parse counters add up to what the source
  // received, the garbage lines are parse errors, and the oversize ones are truncated.
  for (const auto& [source, mix] : mixes) {
    const std::map<std::string, std::string> of_source = {{"source", source}};
    const uint64_t analyzed = sum(m, "vigil_events_parsed_total", of_source) +
                              sum(m, "vigil_parse_errors_total", of_source);
    EXPECT_EQ(analyzed, static_cast<uint64_t>(mix.received())) << source;
    EXPECT_EQ(sum(m, "vigil_parse_errors_total", of_source), static_cast<uint64_t>(mix.garbage))
        << source;
    EXPECT_EQ(sum(m, "vigil_events_truncated_total", of_source),
              static_cast<uint64_t>(mix.oversize))
        << source;
    EXPECT_EQ(sum(m, "vigil_events_delivered_total", of_source) +
                  sum(m, "vigil_events_dropped_total", of_source),
              analyzed)
        << source;
  }

  // Per (source, tenant): delivered + dropped by quota == parsed + parse errors.
  for (const auto& [source, mix] : mixes) {
    for (const char* tenant : {"default", "replay", "globex", "loopback", "lab", "limited"}) {
      const std::map<std::string, std::string> flow = {{"source", source}, {"tenant", tenant}};
      EXPECT_EQ(
          sum(m, "vigil_events_delivered_total", flow) + sum(m, "vigil_events_dropped_total", flow),
          sum(m, "vigil_events_parsed_total", flow) + sum(m, "vigil_parse_errors_total", flow))
          << source << " " << tenant;
      EXPECT_TRUE(hasSeries(m, "vigil_events_dropped_total",
                            {{"reason", "tenant_quota"}, {"source", source}, {"tenant", tenant}}))
          << source << " " << tenant;
    }
  }

  // Tenants: the field rules come first, then the CIDR rule catches the network sources,
  // and the file source's other events keep its own tenant.
  int limited = 0;
  int globex = 0;
  for (const auto& [source, mix] : mixes) {
    limited += mix.limited;
    globex += mix.globex;
  }
  EXPECT_EQ(sum(m, "vigil_tenant_events_total"), received);
  EXPECT_EQ(sum(m, "vigil_tenant_events_total", {{"tenant", "limited"}}),
            static_cast<uint64_t>(limited));
  EXPECT_EQ(sum(m, "vigil_tenant_events_total", {{"tenant", "globex"}}),
            static_cast<uint64_t>(globex));
  EXPECT_EQ(sum(m, "vigil_tenant_events_total", {{"tenant", "replay"}}),
            static_cast<uint64_t>(file_mix.received() - file_mix.globex - file_mix.limited));
  uint64_t loopback = 0;
  for (const Mix& mix : {udp_mix, tcp_mix, tls_mix}) {
    loopback += static_cast<uint64_t>(mix.received() - mix.globex - mix.limited);
  }
  EXPECT_EQ(sum(m, "vigil_tenant_events_total", {{"tenant", "loopback"}}), loopback);
  EXPECT_EQ(sum(m, "vigil_tenant_events_total", {{"tenant", "lab"}}), 0u);
  // Every configured tenant is exported from the start, even without events.
  EXPECT_TRUE(hasSeries(m, "vigil_tenant_events_total", {{"tenant", "default"}}));
  EXPECT_TRUE(hasSeries(m, "vigil_tenant_events_total", {{"tenant", "lab"}}));

  // Quota: the `limited` tenant gets exactly its burst through, the rest of its events are
  // dropped, and no other tenant loses an event.
  EXPECT_EQ(sum(m, "vigil_events_delivered_total", {{"tenant", "limited"}}),
            static_cast<uint64_t>(kQuotaBurst));
  EXPECT_EQ(
      sum(m, "vigil_events_dropped_total", {{"tenant", "limited"}, {"reason", "tenant_quota"}}),
      static_cast<uint64_t>(limited - kQuotaBurst));
  EXPECT_EQ(sum(m, "vigil_events_dropped_total"), static_cast<uint64_t>(limited - kQuotaBurst));
  EXPECT_EQ(sum(m, "vigil_events_delivered_total"),
            received - static_cast<uint64_t>(limited - kQuotaBurst));

  EXPECT_EQ(daemon.stop(), 0) << daemon.log();
}

}  // namespace
}  // namespace vigil::testing
