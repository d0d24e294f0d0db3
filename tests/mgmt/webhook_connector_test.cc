// The webhook connector against a local HTTP server on 127.0.0.1: compiled playbooks call
// it through the VM, failures reach retry and on_error, and every request carries the
// action's idempotency key.
#include "mgmt/webhook_connector.h"

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "mgmt/action_router.h"
#include "playbook_vm/compiler/alert_host.h"
#include "playbook_vm/compiler/compiler.h"
#include "playbook_vm/vm.h"

namespace vigil::mgmt {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;
namespace pb = playbook_vm;
namespace pbc = playbook_vm::compiler;

WebhookOptions optionsFor(std::string url,
                          std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  WebhookOptions options;
  options.url = std::move(url);
  options.timeout = timeout;
  return options;
}

class WebhookConnectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pbc::registerAlertHost(host_).ok());
    server_.Post("/hook", [this](const httplib::Request& request, httplib::Response& response) {
      std::lock_guard<std::mutex> lock(mutex_);
      bodies_.push_back(request.body);
      authorization_ = request.get_header_value("Authorization");
      keys_.push_back(request.get_header_value(key_header_.c_str()));
      has_default_key_header_.push_back(request.has_header("Idempotency-Key"));
      if (fail_first_ > 0) {
        --fail_first_;
        response.status = 503;
        response.set_content("busy", "text/plain");
        return;
      }
      response.status = status_.load();
      response.set_content(reply_, "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // cpp-httplib 0.11 has no wait_until_ready(); poll is_running().
    for (int i = 0; i < 500 && !server_.is_running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ASSERT_TRUE(server_.is_running());
  }
  void TearDown() override {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }

  // Compiles `steps` and runs them as run `run_id` with `connector`, resuming every
  // suspension (retry back-offs) at once. Returns the rendered result or error.
  std::string runPlaybook(const std::string& steps, pbc::ActionConnector& connector,
                          int64_t run_id = 1) {
    auto program =
        pbc::compileAndLoad("name: hook\ntrigger: {}\nsteps:\n" + steps, "hook.yml", host_);
    EXPECT_TRUE(program.ok()) << program.status();
    if (!program.ok()) return "";
    nlohmann::json alert = {{"host", "ws-9"}};
    RunContext context;
    context.alert = &alert;
    context.connector = &connector;
    context.run_id = run_id;
    context.created_ns = 1'700'000'000'000'000'000;
    pb::Vm vm;
    pb::RunResult r = vm.run(**program, host_, pb::Budget{}, &context);
    for (int i = 0; i < 10 && r.status == pb::RunStatus::kSuspended; ++i) {
      r = vm.resume(**program, host_, pb::Budget{}, vm.saveState(), pb::Value::null(), &context);
    }
    return r.status == pb::RunStatus::kReturned ? pb::valueToString(r.value) : r.message;
  }

  // An ActionRouter that sends every action to `connector`.
  std::unique_ptr<ActionRouter> routerFor(std::unique_ptr<WebhookConnector> connector) {
    std::vector<NamedConnector> connectors(1);
    connectors[0].name = "hook";
    connectors[0].type = "webhook";
    connectors[0].connector = std::move(connector);
    return std::make_unique<ActionRouter>(std::move(connectors),
                                          std::vector<ActionRoute>{{"*", "hook"}}, metrics_);
  }

  std::vector<std::string> keys() {
    std::lock_guard<std::mutex> lock(mutex_);
    return keys_;
  }

  pb::HostRegistry host_;
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mutex_;
  std::vector<std::string> bodies_;
  std::string authorization_;
  std::atomic<int> status_{200};
  std::string reply_ = R"({"result": {"ticket": "T-42"}})";
  std::string key_header_ = "Idempotency-Key";  // header whose values keys_ records
  std::vector<std::string> keys_;
  std::vector<bool> has_default_key_header_;
  int fail_first_ = 0;  // requests still to answer 503
  MetricsRegistry metrics_;
};

constexpr const char* kRetriedAction =
    "  - action: edr.isolate_host\n"
    "    with: {host: alert.host}\n"
    "    retry: {attempts: 3, backoff: 1s}\n"
    "    output: r\n"
    "  - stop: r\n";

// A retry after a 503 sends the key of the first attempt; another run sends another key.
TEST_F(WebhookConnectorTest, IdempotencyKeyStableAcrossRetries) {
  auto created = WebhookConnector::create(optionsFor(url()));
  ASSERT_TRUE(created.ok()) << created.status();
  std::unique_ptr<ActionRouter> router = routerFor(std::move(*created));
  fail_first_ = 1;
  reply_ = R"({"result": "done"})";
  EXPECT_EQ(runPlaybook(kRetriedAction, *router, /*run_id=*/7), "\"done\"");
  EXPECT_EQ(runPlaybook(kRetriedAction, *router, /*run_id=*/8), "\"done\"");

  std::vector<std::string> sent = keys();
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_THAT(sent[0], MatchesRegex("vigil-[0-9a-f]{32}"));
  EXPECT_EQ(sent[1], sent[0]);  // the retry of run 7
  EXPECT_NE(sent[2], sent[0]);  // run 8
}

// A loop that repeats a successful call with the same parameters gets a new key each
// time; different parameters give different keys too.
TEST_F(WebhookConnectorTest, IdempotencyKeyNewForEachCall) {
  auto created = WebhookConnector::create(optionsFor(url()));
  ASSERT_TRUE(created.ok()) << created.status();
  std::unique_ptr<ActionRouter> router = routerFor(std::move(*created));
  runPlaybook(
      "  - for_each: h\n"
      "    in: \"['a', 'a', 'b']\"\n"
      "    limit: 3\n"
      "    do:\n"
      "      - action: edr.isolate_host\n"
      "        with: {host: h}\n",
      *router);
  std::vector<std::string> sent = keys();
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_NE(sent[0], sent[1]);
  EXPECT_NE(sent[1], sent[2]);
  EXPECT_NE(sent[0], sent[2]);
}

// Without the router the connector derives the same key the router would.
TEST_F(WebhookConnectorTest, IdempotencyKeyWithoutRouter) {
  auto direct = WebhookConnector::create(optionsFor(url()));
  ASSERT_TRUE(direct.ok());
  runPlaybook(kRetriedAction, **direct, /*run_id=*/7);
  auto routed = WebhookConnector::create(optionsFor(url()));
  ASSERT_TRUE(routed.ok());
  std::unique_ptr<ActionRouter> router = routerFor(std::move(*routed));
  runPlaybook(kRetriedAction, *router, /*run_id=*/7);
  std::vector<std::string> sent = keys();
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_FALSE(sent[0].empty());
  EXPECT_EQ(sent[0], sent[1]);
}

// The key header can be renamed, or left out with an empty name.
TEST_F(WebhookConnectorTest, IdempotencyHeaderConfigurable) {
  WebhookOptions options = optionsFor(url());
  options.idempotency_header = "X-Request-Key";
  auto renamed = WebhookConnector::create(options);
  ASSERT_TRUE(renamed.ok()) << renamed.status();
  key_header_ = "X-Request-Key";
  runPlaybook("  - action: chat.notify\n", **renamed);
  options.idempotency_header = "";
  auto none = WebhookConnector::create(options);
  ASSERT_TRUE(none.ok()) << none.status();
  runPlaybook("  - action: chat.notify\n", **none);

  std::lock_guard<std::mutex> lock(mutex_);
  ASSERT_EQ(keys_.size(), 2u);
  EXPECT_THAT(keys_[0], MatchesRegex("vigil-[0-9a-f]{32}"));
  EXPECT_FALSE(has_default_key_header_[0]);
  EXPECT_EQ(keys_[1], "");
  EXPECT_FALSE(has_default_key_header_[1]);
}

// The action and its parameters arrive as JSON; the result member comes back.
TEST_F(WebhookConnectorTest, PostsActionAndReturnsResult) {
  WebhookOptions options = optionsFor(url());
  options.headers = {{"Authorization", "Bearer test-token"}};
  auto connector = WebhookConnector::create(options);
  ASSERT_TRUE(connector.ok()) << connector.status();
  reply_ = R"({"result": ["T-42", 3]})";
  std::string result = runPlaybook(
      "  - action: ticket.create\n"
      "    with: {title: \"host ${alert.host}\", prio: 2, tags: [\"a\", \"b\"]}\n"
      "    output: t\n"
      "  - stop: t\n",
      **connector);
  EXPECT_EQ(result, "[\"T-42\", 3]");
  std::lock_guard<std::mutex> lock(mutex_);
  ASSERT_EQ(bodies_.size(), 1u);
  nlohmann::json body = nlohmann::json::parse(bodies_[0]);
  EXPECT_EQ(body["action"], "ticket.create");
  EXPECT_EQ(body["params"]["title"], "host ws-9");
  EXPECT_EQ(body["params"]["prio"], 2);
  EXPECT_EQ(body["params"]["tags"], nlohmann::json({"a", "b"}));
  EXPECT_EQ(authorization_, "Bearer test-token");
  EXPECT_EQ((*connector)->calls(), 1u);
}

// A non-JSON body is returned as text.
TEST_F(WebhookConnectorTest, TextBodyIsText) {
  auto connector = WebhookConnector::create(optionsFor(url()));
  ASSERT_TRUE(connector.ok());
  reply_ = "accepted";
  EXPECT_EQ(runPlaybook("  - action: chat.notify\n    output: r\n  - stop: r\n", **connector),
            "\"accepted\"");
}

// A JSON body nested deeper than kMaxJsonDepth is returned as text, because turning it into
// a VM value would recurse once per level.
TEST_F(WebhookConnectorTest, DeeplyNestedBodyIsText) {
  auto connector = WebhookConnector::create(optionsFor(url()));
  ASSERT_TRUE(connector.ok());
  reply_ = std::string(200, '[') + std::string(200, ']');
  EXPECT_EQ(runPlaybook("  - action: chat.notify\n    output: r\n  - stop: r\n", **connector),
            "\"" + reply_ + "\"");
}

// An HTTP error status fails the action, and on_error receives the message.
TEST_F(WebhookConnectorTest, HttpErrorReachesOnError) {
  auto connector = WebhookConnector::create(optionsFor(url()));
  ASSERT_TRUE(connector.ok());
  status_ = 503;
  reply_ = "maintenance";
  std::string result = runPlaybook(
      "  - action: edr.isolate_host\n"
      "    on_error: [{stop: \"${error}\"}]\n",
      **connector);
  EXPECT_THAT(result, HasSubstr("returned HTTP 503: maintenance"));
  EXPECT_EQ((*connector)->failures(), 1u);
}

// A receiver echoes the request headers in its body, in an error and in a result. The
// header values come back as "[redacted]", so the secret reaches neither the error message
// (which the log and the run store keep) nor the run's values.
TEST_F(WebhookConnectorTest, EchoedHeaderValuesRedacted) {
  std::atomic<int> echo_status{500};
  server_.Post("/echo", [&](const httplib::Request& request, httplib::Response& response) {
    nlohmann::json headers = nlohmann::json::object();
    for (const auto& [name, value] : request.headers) headers[name] = value;
    nlohmann::json body = {{"error", "bad auth"}, {"you_sent", headers}};
    body["token_only"] = "token was " + request.get_header_value("Authorization").substr(7);
    response.status = echo_status.load();
    response.set_content(body.dump(), "application/json");
  });
  server_.Post("/echo-text", [](const httplib::Request& request, httplib::Response& response) {
    response.status = 200;
    response.set_content("key=" + request.get_header_value("X-Key"), "text/plain");
  });
  WebhookOptions options = optionsFor("http://127.0.0.1:" + std::to_string(port_) + "/echo");
  options.headers = {{"Authorization", "Bearer ENVSECRET-1a2b3c4d"}, {"X-Key", "quote\"d-key"}};
  auto connector = WebhookConnector::create(options);
  ASSERT_TRUE(connector.ok()) << connector.status();

  std::string error = runPlaybook(
      "  - action: soc.notify_start\n"
      "    on_error: [{stop: \"${error}\"}]\n",
      **connector);
  EXPECT_THAT(error, HasSubstr("returned HTTP 500: {"));
  EXPECT_THAT(error, HasSubstr("\"Authorization\":\"[redacted]\""));
  EXPECT_THAT(error, Not(HasSubstr("ENVSECRET")));
  EXPECT_THAT(error, Not(HasSubstr("1a2b3c4d")));
  EXPECT_THAT(error, Not(HasSubstr("quote")));

  echo_status = 200;
  std::string result =
      runPlaybook("  - action: soc.notify_start\n    output: r\n  - stop: r\n", **connector);
  EXPECT_THAT(result, HasSubstr("token was [redacted]"));
  EXPECT_THAT(result, Not(HasSubstr("ENVSECRET")));
  EXPECT_THAT(result, Not(HasSubstr("quote")));

  options.url = "http://127.0.0.1:" + std::to_string(port_) + "/echo-text";
  auto text_connector = WebhookConnector::create(options);
  ASSERT_TRUE(text_connector.ok()) << text_connector.status();
  EXPECT_EQ(runPlaybook("  - action: chat.notify\n    output: r\n  - stop: r\n", **text_connector),
            "\"key=[redacted]\"");
}

// An error body is cut to 200 bytes after redaction, so a secret that straddles the cut does
// not leave its start in the message.
TEST_F(WebhookConnectorTest, ErrorBodyExcerptCapped) {
  WebhookOptions options = optionsFor(url());
  options.headers = {{"Authorization", "SECRETSECRETSECRET"}};
  auto connector = WebhookConnector::create(options);
  ASSERT_TRUE(connector.ok());
  status_ = 502;
  reply_ = std::string(190, 'x') + "SECRETSECRETSECRET" + std::string(5000, 'y');
  std::string result = runPlaybook(
      "  - action: edr.isolate_host\n"
      "    on_error: [{stop: \"${error}\"}]\n",
      **connector);
  EXPECT_THAT(result, HasSubstr("returned HTTP 502: " + std::string(190, 'x') + "[redacted]"));
  EXPECT_THAT(result, Not(HasSubstr("SECRET")));
  EXPECT_THAT(result, Not(HasSubstr(std::string(10, 'y'))));
}

// Without on_error, a refused connection fails the run with the transport error.
TEST_F(WebhookConnectorTest, ConnectionRefusedFailsRun) {
  server_.stop();
  thread_.join();
  auto connector = WebhookConnector::create(optionsFor(url(), std::chrono::milliseconds(500)));
  ASSERT_TRUE(connector.ok());
  std::string result = runPlaybook("  - action: edr.isolate_host\n", **connector);
  EXPECT_THAT(result, HasSubstr("action edr.isolate_host failed after 1 attempt: webhook POST "
                                "http://127.0.0.1:"));
  EXPECT_THAT(result, HasSubstr("/hook failed: cannot connect (refused, unreachable or timed "
                                "out); check the URL and that the receiver is up"));
}

// A server that sends its body a byte at a time stays under httplib's per-read timeout, so
// the connector stops the call at its own deadline from the request's start.
TEST_F(WebhookConnectorTest, TrickledResponseTimesOut) {
  server_.Post("/slow", [](const httplib::Request&, httplib::Response& response) {
    response.set_chunked_content_provider("text/plain", [](size_t offset, httplib::DataSink& sink) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      sink.write("x", 1);
      if (offset >= 40) sink.done();
      return true;
    });
  });
  auto connector = WebhookConnector::create(
      optionsFor("http://127.0.0.1:" + std::to_string(port_) + "/slow",
                 std::chrono::milliseconds(500)));
  ASSERT_TRUE(connector.ok());
  const auto start = std::chrono::steady_clock::now();
  std::string result = runPlaybook("  - action: edr.isolate_host\n", **connector);
  EXPECT_THAT(result, HasSubstr("/slow timed out: the response did not arrive in full within "
                                "500 ms"));
  // 41 bytes at 100 ms each would take 4 s, and the call ends soon after its 500 ms.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

// A response over max_response_bytes fails the action before anything reaches the run heap.
// So the failure is an action error that retry and on_error handle, not a run heap failure.
TEST_F(WebhookConnectorTest, OversizeResponseFailsAction) {
  WebhookOptions options = optionsFor(url());
  options.max_response_bytes = 1000;
  auto connector = WebhookConnector::create(options);
  ASSERT_TRUE(connector.ok());
  reply_ = "\"" + std::string(2000, 'a') + "\"";
  std::string result = runPlaybook("  - action: edr.isolate_host\n", **connector);
  EXPECT_THAT(result, HasSubstr("action edr.isolate_host failed after 1 attempt"));
  EXPECT_THAT(result, HasSubstr("/hook failed: the response is over 1000 bytes; raise "
                                "max_response_bytes or return less"));
  reply_ = "\"" + std::string(900, 'a') + "\"";
  EXPECT_EQ(runPlaybook("  - action: chat.notify\n    output: r\n  - stop: r\n", **connector),
            reply_);
}

// Credentials in the URL are sent as Basic authentication, and the password never appears
// in the action error that reaches the run record and the log.
TEST_F(WebhookConnectorTest, UrlPasswordIsSentButNotShown) {
  const std::string secret_url =
      "http://admin:UrlPass777@127.0.0.1:" + std::to_string(port_) + "/hook";
  auto connector = WebhookConnector::create(optionsFor(secret_url));
  ASSERT_TRUE(connector.ok()) << connector.status();
  status_ = 503;
  reply_ = "maintenance";
  std::string result = runPlaybook("  - action: edr.isolate_host\n", **connector);
  EXPECT_THAT(result, HasSubstr("returned HTTP 503: maintenance"));
  EXPECT_THAT(result, Not(HasSubstr("UrlPass777")));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    // base64("admin:UrlPass777")
    EXPECT_EQ(authorization_, "Basic YWRtaW46VXJsUGFzczc3Nw==");
  }

  auto bad = WebhookConnector::create(optionsFor("http://admin:UrlPass777@127.0.0.1:99999/x"));
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("webhook url 'http://admin:***@127.0.0.1:99999/x' has an invalid port"));
  bad = WebhookConnector::create(optionsFor("ftp://token123@127.0.0.1/x"));
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("'ftp://***@127.0.0.1/x'"));

  WebhookOptions both = optionsFor(secret_url);
  both.headers.emplace_back("authorization", "Bearer t");
  bad = WebhookConnector::create(both);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("Authorization header"));
  EXPECT_THAT(std::string(bad.status().message()), Not(HasSubstr("UrlPass777")));
}

// Invalid URLs and timeouts are rejected with the value named.
TEST_F(WebhookConnectorTest, RejectsInvalidOptions) {
  auto bad = WebhookConnector::create(optionsFor("ftp://127.0.0.1/x"));
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("must start with http://"));
  bad = WebhookConnector::create(optionsFor("http://127.0.0.1:99999/x"));
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("invalid port"));
  bad = WebhookConnector::create(optionsFor("http:///x"));
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("has no host"));
  bad = WebhookConnector::create(optionsFor(url(), std::chrono::milliseconds(0)));
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("timeout 0 ms"));

  WebhookOptions spaced = optionsFor(url());
  spaced.idempotency_header = "Idempotency Key";
  bad = WebhookConnector::create(spaced);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("idempotency header 'Idempotency Key' is not an HTTP header name"));
  WebhookOptions clash = optionsFor(url());
  clash.headers = {{"idempotency-key", "fixed"}};
  bad = WebhookConnector::create(clash);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("header 'idempotency-key' is also the idempotency header"));
}

}  // namespace
}  // namespace vigil::mgmt
