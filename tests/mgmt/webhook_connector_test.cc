// The webhook connector against a local HTTP server on 127.0.0.1: compiled playbooks call
// it through the VM, and failures reach retry and on_error.
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
#include "playbook_vm/compiler/alert_host.h"
#include "playbook_vm/compiler/compiler.h"
#include "playbook_vm/vm.h"

namespace vigil::mgmt {
namespace {

using ::testing::HasSubstr;
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

  // Compiles `steps` and runs them with `connector`; returns the rendered result or error.
  std::string runPlaybook(const std::string& steps, pbc::ActionConnector& connector) {
    auto program =
        pbc::compileAndLoad("name: hook\ntrigger: {}\nsteps:\n" + steps, "hook.yml", host_);
    EXPECT_TRUE(program.ok()) << program.status();
    if (!program.ok()) return "";
    nlohmann::json alert = {{"host", "ws-9"}};
    pbc::AlertRunContext context;
    context.alert = &alert;
    context.connector = &connector;
    pb::Vm vm;
    pb::RunResult r = vm.run(**program, host_, pb::Budget{}, &context);
    return r.status == pb::RunStatus::kReturned ? pb::valueToString(r.value) : r.message;
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
};

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

// Without on_error, a refused connection fails the run with the transport error.
TEST_F(WebhookConnectorTest, ConnectionRefusedFailsRun) {
  server_.stop();
  thread_.join();
  auto connector = WebhookConnector::create(optionsFor(url(), std::chrono::milliseconds(500)));
  ASSERT_TRUE(connector.ok());
  std::string result = runPlaybook("  - action: edr.isolate_host\n", **connector);
  EXPECT_THAT(result, HasSubstr("action edr.isolate_host failed after 1 attempt: webhook POST "
                                "http://127.0.0.1:"));
  EXPECT_THAT(result, HasSubstr("/hook failed: transport error Connection"));
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
}

}  // namespace
}  // namespace vigil::mgmt
