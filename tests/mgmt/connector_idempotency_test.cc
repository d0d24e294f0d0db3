// Connectors on the far side of an idempotency key. A run that runs again after a restart
// has a new RunContext with the same run id and creation time, so the same keys. It must
// not open a second case, add a second note or count a second block, and a syslog
// collector must get the key. Another run (other keys) must do the work again.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "mgmt/action_router.h"
#include "mgmt/blocklist_connector.h"
#include "mgmt/case_connector.h"
#include "mgmt/case_store.h"
#include "mgmt/internal/crypto_util.h"
#include "mgmt/syslog_connector.h"
#include "mgmt_test_util.h"
#include "playbook_vm/compiler/compiler.h"

namespace vigil::mgmt {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using testing::TempDir;
namespace pb = playbook_vm;
namespace pbc = playbook_vm::compiler;

constexpr int64_t kCreatedNs = 1'767'225'600'000'000'000;

class ConnectorIdempotencyTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(pbc::registerAlertHost(host_).ok()); }

  // Sends every action to `connector`.
  void route(std::unique_ptr<pbc::ActionConnector> connector) {
    std::vector<NamedConnector> connectors(1);
    connectors[0].name = "target";
    connectors[0].type = "test";
    connectors[0].connector = std::move(connector);
    router_ = std::make_unique<ActionRouter>(
        std::move(connectors), std::vector<ActionRoute>{{"*", "target"}}, metrics_);
  }

  // Runs `steps` as run `run_id` of tenant acme with a fresh RunContext, as a run that
  // runs again after a restart has one. Returns "OUTCOME:MESSAGE" of each action step,
  // joined by "|", and keeps the idempotency keys of the action steps in keys_.
  std::string run(const std::string& steps, int64_t run_id) {
    auto program =
        pbc::compileAndLoad("name: idem\ntrigger: {}\nsteps:\n" + steps, "idem.yml", host_);
    EXPECT_TRUE(program.ok()) << program.status();
    if (!program.ok()) return "";
    RunContext ctx;
    ctx.alert = &alert_;
    ctx.connector = router_.get();
    ctx.run_id = run_id;
    ctx.created_ns = kCreatedNs;
    ctx.tenant = "acme";
    ctx.playbook = "idem";
    ctx.alert_id = "a-1";
    pb::Vm vm;
    vm.run(**program, host_, pb::Budget{}, &ctx);
    keys_.clear();
    std::string out;
    for (const RunStep& step : ctx.steps) {
      if (step.kind != "action") continue;
      keys_.push_back(step.idempotency_key);
      out += (out.empty() ? "" : "|") + step.outcome + ":" + step.message;
    }
    return out;
  }

  std::unique_ptr<CaseStore> openCases(const std::string& path) {
    CaseStoreOptions options;
    absl::StatusOr<std::unique_ptr<CaseStore>> store = CaseStore::open(path, options);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(*store) : nullptr;
  }

  TempDir dir_;
  pb::HostRegistry host_;
  MetricsRegistry metrics_;
  nlohmann::json alert_ = {{"host", "ws-9"}, {"src_ip", "203.0.113.9"}};
  std::unique_ptr<ActionRouter> router_;
  std::vector<std::string> keys_;
};

constexpr const char* kOpenAndNote = R"(  - action: case.open
    with: {title: "host isolated"}
  - action: case.add_note
    with: {text: "isolated ws-9"}
)";

// A case open and a note repeated with the same keys leave one case with one note; another
// run opens a second case.
TEST_F(ConnectorIdempotencyTest, CaseOpenAndNoteRunOncePerKey) {
  std::unique_ptr<CaseStore> cases = openCases(dir_.file("cases.db"));
  ASSERT_NE(cases, nullptr);
  ConnectorConfig config;
  config.name = "cases";
  config.type = "case";
  route(std::make_unique<CaseConnector>(config, *cases));

  const std::string first = run(kOpenAndNote, 7);
  EXPECT_THAT(first, MatchesRegex("ok:[0-9]+\\|ok:[0-9]+"));
  const std::vector<std::string> first_keys = keys_;
  EXPECT_EQ(run(kOpenAndNote, 7), first);
  EXPECT_EQ(keys_, first_keys);

  auto page = cases->listCases(CaseFilter{});
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->total, 1);
  auto notes = cases->caseNotes(page->items[0].id);
  ASSERT_TRUE(notes.ok());
  EXPECT_EQ(notes->size(), 1u);

  EXPECT_THAT(run(kOpenAndNote, 8), MatchesRegex("ok:[0-9]+\\|ok:[0-9]+"));
  EXPECT_NE(keys_, first_keys);
  EXPECT_EQ(cases->listCases(CaseFilter{})->total, 2);
}

// The repeat of a note under a recorded key works on the recorded case, so a run that
// runs again after a restart adds its later notes to the case its first segment opened.
TEST_F(ConnectorIdempotencyTest, RepeatedOpenReturnsTheSameCase) {
  std::unique_ptr<CaseStore> cases = openCases(dir_.file("cases.db"));
  ASSERT_NE(cases, nullptr);
  ConnectorConfig config;
  config.name = "cases";
  config.type = "case";
  route(std::make_unique<CaseConnector>(config, *cases));
  const std::string steps = R"(  - action: case.open
    with: {title: "t"}
  - action: case.add_note
    with: {text: "n"}
)";
  std::string first = run(steps, 3);
  EXPECT_THAT(first, MatchesRegex("ok:[0-9]+\\|ok:[0-9]+"));
  std::string again = run(steps, 3);
  EXPECT_EQ(again, first);
  EXPECT_NE(run(steps, 4), first);
}

// Filing an inbox alert again under the same key returns the case it was filed in instead
// of failing because the inbox no longer contains it.
TEST_F(ConnectorIdempotencyTest, AttachAlertRepeatReturnsItsCase) {
  std::unique_ptr<CaseStore> cases = openCases(dir_.file("cases.db"));
  ASSERT_NE(cases, nullptr);
  auto ids = cases->queueAlerts(
      {testing::makeAlert("ssh", "high", "acme", {{"source.ip", "10.0.0.5"}}, testing::kT0)});
  ASSERT_TRUE(ids.ok()) << ids.status();
  ConnectorConfig config;
  config.name = "cases";
  config.type = "case";
  route(std::make_unique<CaseConnector>(config, *cases));
  const std::string steps = "  - action: case.attach_alert\n    with: {inbox_id: " +
                            std::to_string((*ids)[0]) + "}\n";
  std::string first = run(steps, 5);
  EXPECT_THAT(first, MatchesRegex("ok:[0-9]+"));
  EXPECT_EQ(run(steps, 5), first);
  // Another run has another key, and the alert is filed already.
  EXPECT_THAT(run(steps, 6), HasSubstr("does not exist"));
  EXPECT_EQ(cases->listCases(CaseFilter{})->total, 1);
}

// A failed keyed action records no key and writes nothing, so its retry does the work.
TEST_F(ConnectorIdempotencyTest, FailedCaseActionRecordsNoKey) {
  const std::string path = dir_.file("cases.db");
  std::unique_ptr<CaseStore> cases = openCases(path);
  ASSERT_NE(cases, nullptr);
  ConnectorConfig config;
  config.name = "cases";
  config.type = "case";
  route(std::make_unique<CaseConnector>(config, *cases));
  EXPECT_THAT(run("  - action: case.add_note\n    with: {case_id: 999, text: \"x\"}\n", 9),
              HasSubstr("999"));
  testing::RawDb raw(path);
  EXPECT_EQ(raw.queryText("SELECT COUNT(*) FROM playbook_action_keys"), "0");
}

// A case store of schema version 3 gains the key table when it opens, and the unique
// index rejects a second row with the same key.
TEST_F(ConnectorIdempotencyTest, CaseStoreMigratesToKeyTable) {
  const std::string path = dir_.file("cases.db");
  ASSERT_NE(openCases(path), nullptr);
  {
    testing::RawDb raw(path);
    ASSERT_EQ(raw.exec("DROP TABLE playbook_action_keys; "
                       "DELETE FROM schema_version; INSERT INTO schema_version VALUES (3)"),
              "");
  }
  std::unique_ptr<CaseStore> cases = openCases(path);
  ASSERT_NE(cases, nullptr);
  EXPECT_EQ(cases->schemaVersion(), CaseStore::latestSchemaVersion());
  testing::RawDb raw(path);
  const std::string insert =
      "INSERT INTO playbook_action_keys (key, tenant, action, case_id, result, done_ns) "
      "VALUES ('vigil-k', 'acme', 'case.open', 1, '1', 0)";
  EXPECT_EQ(raw.exec(insert), "");
  EXPECT_THAT(raw.exec(insert), HasSubstr("UNIQUE"));
}

// A key recorded for one tenant is not replayed for another.
TEST_F(ConnectorIdempotencyTest, KeyOfAnotherTenantIsRejected) {
  std::unique_ptr<CaseStore> cases = openCases(dir_.file("cases.db"));
  ASSERT_NE(cases, nullptr);
  bool replayed = false;
  auto action = [] { return CaseStore::KeyedActionResult{1, "1"}; };
  ASSERT_TRUE(cases->runKeyedAction("vigil-k", "acme", "case.open", action, &replayed).ok());
  EXPECT_FALSE(replayed);
  auto again = cases->runKeyedAction("vigil-k", "acme", "case.open", action, &replayed);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(replayed);
  auto other = cases->runKeyedAction("vigil-k", "globex", "case.open", action, &replayed);
  EXPECT_EQ(other.status().code(), absl::StatusCode::kPermissionDenied);
}

// A block repeated with the same key leaves one entry counted once, also after the
// connector reloads its state file; another run's block is a repeat offence.
TEST_F(ConnectorIdempotencyTest, BlockRunsOncePerKey) {
  ConnectorConfig config;
  config.name = "fw";
  config.type = "blocklist";
  config.path = dir_.file("block.nft");
  config.default_duration_s = 60;
  auto created = BlocklistConnector::create(config);
  ASSERT_TRUE(created.ok()) << created.status();
  BlocklistConnector* blocklist = created->get();
  route(std::move(*created));
  const std::string steps = "  - action: firewall.block_ip\n    with: {ip: alert.src_ip}\n";

  run(steps, 11);
  run(steps, 11);
  ASSERT_EQ(blocklist->entries().size(), 1u);
  EXPECT_EQ(blocklist->entries().at("203.0.113.9").count, 1);

  auto reloaded = BlocklistConnector::create(config);
  ASSERT_TRUE(reloaded.ok());
  blocklist = reloaded->get();
  route(std::move(*reloaded));
  run(steps, 11);
  EXPECT_EQ(blocklist->entries().at("203.0.113.9").count, 1);
  run(steps, 12);
  EXPECT_EQ(blocklist->entries().at("203.0.113.9").count, 2);
}

// Removing an address twice, or one never listed, succeeds and leaves it unlisted.
TEST_F(ConnectorIdempotencyTest, UnblockIsIdempotent) {
  ConnectorConfig config;
  config.name = "fw";
  config.type = "blocklist";
  config.path = dir_.file("block.nft");
  auto blocklist = BlocklistConnector::create(config);
  ASSERT_TRUE(blocklist.ok());
  ASSERT_TRUE((*blocklist)->block("203.0.113.9", 0, "c", "vigil-a").ok());
  EXPECT_TRUE((*blocklist)->unblock("203.0.113.9").ok());
  EXPECT_TRUE((*blocklist)->unblock("203.0.113.9").ok());
  EXPECT_TRUE((*blocklist)->unblock("198.51.100.1").ok());
  EXPECT_TRUE((*blocklist)->entries().empty());
}

// A UDP socket on 127.0.0.1 that returns each datagram it receives.
class UdpReceiver {
 public:
  UdpReceiver() {
    fd_ = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    timeval timeout{5, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  }
  ~UdpReceiver() { close(fd_); }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string receive() {
    char buffer[8192];
    ssize_t n = recv(fd_, buffer, sizeof(buffer), 0);
    return n > 0 ? std::string(buffer, static_cast<size_t>(n)) : "";
  }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// Every syslog message carries the call's key, in the structured data element (RFC 5424)
// or as externalId (CEF), and a repeat of the call carries the same key.
TEST_F(ConnectorIdempotencyTest, SyslogCarriesTheKey) {
  for (const std::string format : {"rfc5424", "cef"}) {
    SCOPED_TRACE(format);
    UdpReceiver receiver;
    ConnectorConfig config;
    config.name = "siem";
    config.type = "syslog";
    config.address = receiver.address();
    config.format = format;
    auto syslog = SyslogConnector::create(config);
    ASSERT_TRUE(syslog.ok()) << syslog.status();
    route(std::move(*syslog));
    const std::string steps = "  - action: siem.forward\n    with: {host: alert.host}\n";
    run(steps, 21);
    ASSERT_EQ(keys_.size(), 1u);
    const std::string key = keys_[0];
    const std::string expected = format == "cef" ? " externalId=" + key
                                                 : " idempotency_key=\"" + key + "\"]";
    EXPECT_THAT(receiver.receive(), HasSubstr(expected));
    run(steps, 21);
    EXPECT_THAT(receiver.receive(), HasSubstr(expected));
    run(steps, 22);
    std::string other = receiver.receive();
    EXPECT_THAT(other, HasSubstr(format == "cef" ? " externalId=vigil-" : " idempotency_key="));
    EXPECT_THAT(other, ::testing::Not(HasSubstr(key)));
  }
}

// A syslog collector over TCP on 127.0.0.1 that reads one octet-counted frame per
// connection and then closes it, as a collector that restarts between two messages does.
class ClosingTcpCollector {
 public:
  ClosingTcpCollector() {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), len);
    listen(listen_fd_, 4);
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~ClosingTcpCollector() {
    stop_.store(true);
    thread_.join();
    close(listen_fd_);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::vector<std::string> frames() {
    std::lock_guard<std::mutex> lock(mu_);
    return frames_;
  }
  int closed() const { return closed_.load(); }

 private:
  void serve() {
    pollfd p{listen_fd_, POLLIN, 0};
    while (!stop_.load()) {
      if (poll(&p, 1, 20) != 1) continue;
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      timeval timeout{2, 0};
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
      std::string data;
      char buffer[4096];
      while (true) {
        const size_t space = data.find(' ');
        if (space != std::string::npos &&
            data.size() >= space + 1 + std::stoul(data.substr(0, space))) {
          std::lock_guard<std::mutex> lock(mu_);
          frames_.push_back(data.substr(space + 1));
          break;
        }
        const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
        if (n <= 0) break;
        data.append(buffer, static_cast<size_t>(n));
      }
      close(fd);
      closed_.fetch_add(1);
    }
  }

  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> closed_{0};
  std::mutex mu_;
  std::vector<std::string> frames_;
  std::thread thread_;
};

// A collector that closed the connection since the last message gets the next one on a
// new connection. Written into the closed connection, it would be lost while the action
// reported success.
TEST_F(ConnectorIdempotencyTest, SyslogTcpReconnectsAfterCollectorClose) {
  ClosingTcpCollector collector;
  ConnectorConfig config;
  config.name = "siem";
  config.type = "syslog";
  config.transport = "tcp";
  config.address = collector.address();
  config.timeout_ms = 2000;
  auto syslog = SyslogConnector::create(config);
  ASSERT_TRUE(syslog.ok()) << syslog.status();
  route(std::move(*syslog));
  const std::string steps = "  - action: siem.forward\n    with: {host: alert.host}\n";
  EXPECT_THAT(run(steps, 31), HasSubstr("ok:"));
  ASSERT_TRUE(testing::waitFor([&] { return collector.closed() == 1; }));
  // On loopback the collector's FIN reaches the connector's socket during close(). The
  // pause covers a loaded machine that defers the packet to ksoftirqd.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_THAT(run(steps, 32), HasSubstr("ok:"));
  ASSERT_TRUE(testing::waitFor([&] { return collector.frames().size() == 2; }))
      << "frames received: " << collector.frames().size();
  EXPECT_THAT(collector.frames()[1], HasSubstr("run=\"32\""));
}

// Keys are SHA-256 over the run id, creation time, pc, action, parameters and the count of
// earlier successes, joined by NUL. A journaled segment that a newer build runs again must
// get the keys the far side has already seen, so the derivation is pinned here against
// the one-shot digest of that text.
TEST(ActionIdempotencyKeyTest, MatchesDigestOfJoinedInputs) {
  RunContext ctx;
  ctx.run_id = 4711;
  ctx.created_ns = kCreatedNs;
  const std::string params = R"({"host":"ws-7"})";
  auto expected = [&](int earlier) {
    const std::string text =
        absl::StrCat(ctx.run_id, std::string(1, '\0'), ctx.created_ns, std::string(1, '\0'), 12,
                     std::string(1, '\0'), "edr.isolate_host", std::string(1, '\0'), params,
                     std::string(1, '\0'), earlier);
    return "vigil-" + internal::sha256Hex(text).substr(0, 32);
  };
  const std::string first = actionIdempotencyKey(ctx, 12, "edr.isolate_host", params);
  EXPECT_EQ(first, expected(0));
  ctx.done_action_keys.insert(first);
  EXPECT_EQ(actionIdempotencyKey(ctx, 12, "edr.isolate_host", params), expected(1));
  EXPECT_EQ(internal::sha256Hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

// Checks known digests of one and two blocks, of a message fed in two pieces, and of
// digests that follow an earlier one on the same object.
TEST(Sha256Test, KnownDigestsAcrossPieces) {
  const std::string two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  const std::string two_blocks_digest =
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
  EXPECT_EQ(internal::sha256Hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(internal::sha256Hex(two_blocks), two_blocks_digest);

  internal::Sha256 hasher;
  unsigned char digest[internal::Sha256::kDigestBytes];
  hasher.update("abc");
  hasher.finish(digest);
  std::string hex;
  internal::appendHex(digest, sizeof(digest), hex);
  EXPECT_EQ(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

  for (size_t split : {size_t{1}, size_t{20}, two_blocks.size() - 1}) {
    SCOPED_TRACE(split);
    hasher.update(absl::string_view(two_blocks).substr(0, split));
    hasher.update(absl::string_view(two_blocks).substr(split));
    hasher.finish(digest);
    hex.clear();
    internal::appendHex(digest, sizeof(digest), hex);
    EXPECT_EQ(hex, two_blocks_digest);
  }
}

// The parameters' text, which goes into every key, is what nlohmann's dump of
// paramsToJson() writes: keys sorted, the last of repeated keys kept, strings escaped and
// invalid UTF-8 replaced, nested lists, and keys that are not strings left out.
TEST(ActionIdempotencyKeyTest, ParamsTextMatchesNlohmannDump) {
  pb::Value inner_items[] = {pb::Value::integer(1), pb::Value::string("two"),
                             pb::Value::null()};
  pb::List inner{inner_items, 3, 3};
  pb::Value empty_items[1];
  pb::List empty{empty_items, 0, 1};
  pb::Value items[] = {
      pb::Value::string("zeta"),    pb::Value::string("last \"quoted\"\n"),
      pb::Value::string("alpha"),   pb::Value::integer(-42),
      pb::Value::string("beta"),    pb::Value::real(0.5),
      pb::Value::string("alpha"),   pb::Value::integer(7),
      pb::Value::integer(3),        pb::Value::string("not a key"),
      pb::Value::string("list"),    pb::Value::list(&inner),
      pb::Value::string("empty"),   pb::Value::list(&empty),
      pb::Value::string("flag"),    pb::Value::boolean(true),
      pb::Value::string("bad\xff"), pb::Value::string("x\xc3"),
      pb::Value::string("nothing"), pb::Value::null(),
      pb::Value::string("odd"),
  };
  const uint32_t count = static_cast<uint32_t>(std::size(items));
  for (uint32_t size : {0u, 2u, 8u, count - 1, count}) {
    SCOPED_TRACE(size);
    pb::List params{items, size, count};
    std::string text = "stale";
    writeParamsJson(params, text);
    EXPECT_EQ(text,
              paramsToJson(params).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
}

}  // namespace
}  // namespace vigil::mgmt
