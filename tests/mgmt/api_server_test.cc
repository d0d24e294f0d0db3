#include "mgmt/api_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "auth_test_util.h"
#include "mgmt/internal/http_rejection.h"
#include "mgmt_test_util.h"

namespace vigil::mgmt {
namespace {

using testing::kSecond;
using testing::kT0;
using testing::makeAlert;

class ApiServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<CaseStore>> store = CaseStore::open(dir_.file("cases.db"));
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);

    correlate::Alert ssh = makeAlert("ssh", "high", "acme", {{"source.ip", "10.0.0.5"}}, kT0);
    ssh.rule_title = "SSH brute force";
    ssh.evidence = {"Failed password for root from 10.0.0.5", "bad byte \xff"};
    ASSERT_TRUE(store_->ingestAlert(ssh).ok());
    ASSERT_TRUE(store_
                    ->ingestAlert(makeAlert("ssh", "high", "acme", {{"source.ip", "10.0.0.5"}},
                                            kT0 + kSecond))
                    .ok());
    ASSERT_TRUE(store_->ingestAlert(makeAlert("dns", "low", "globex", {}, kT0 + 2 * kSecond)).ok());

    // A case can only be opened for a tenant that exists.
    auth_ = std::make_unique<testing::TestAuth>(dir_.file(""),
                                                std::vector<std::string>{"acme", "globex"});
    ApiServerOptions options;
    options.listen = "127.0.0.1:0";
    options.max_payload_bytes = 1024;
    auth_->apply(options);
    server_ = std::make_unique<ApiServer>(*store_, metrics_, options);
    server_->addRoute("POST", "/api/v1/echo/{word}", [](const ApiRequest& request) {
      ApiResponse response;
      response.content_type = "text/plain";
      response.body = request.pathParam("word") + ":" + request.body;
      return absl::StatusOr<ApiResponse>(response);
    });
    absl::Status started = server_->start();
    ASSERT_TRUE(started.ok()) << started;
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    client_->set_bearer_token_auth(auth_->adminToken());
  }

  void TearDown() override {
    if (server_) server_->stop();
  }

  // GETs `path` and parses the JSON body; fails the test when there is no response.
  nlohmann::json getJson(const std::string& path, int expected_status) {
    httplib::Result result = client_->Get(path);
    EXPECT_TRUE(result) << path << ": " << httplib::to_string(result.error());
    if (!result) return {};
    EXPECT_EQ(result->status, expected_status) << path << ": " << result->body;
    EXPECT_EQ(result->get_header_value("Content-Type"), "application/json") << path;
    nlohmann::json body = nlohmann::json::parse(result->body, nullptr, false);
    EXPECT_FALSE(body.is_discarded()) << path << ": " << result->body;
    return body;
  }

  testing::TempDir dir_;
  MetricsRegistry metrics_;
  std::unique_ptr<CaseStore> store_;
  std::unique_ptr<testing::TestAuth> auth_;
  std::unique_ptr<ApiServer> server_;
  std::unique_ptr<httplib::Client> client_;
};

// /healthz returns {"status":"ok"}, and HEAD is routed like GET.
TEST_F(ApiServerTest, Healthz) {
  nlohmann::json body = getJson("/healthz", 200);
  EXPECT_EQ(body, nlohmann::json({{"status", "ok"}}));
  httplib::Result head = client_->Head("/healthz");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
}

// /metrics serves Prometheus text with the 0.0.4 content type.
TEST_F(ApiServerTest, MetricsText) {
  getJson("/healthz", 200);
  httplib::Result result = client_->Get("/metrics");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  EXPECT_EQ(result->get_header_value("Content-Type"), "text/plain; version=0.0.4");
  EXPECT_NE(result->body.find("# TYPE vigil_api_requests_total counter"), std::string::npos);
  EXPECT_NE(result->body.find("vigil_api_requests_total{status=\"200\"}"), std::string::npos);
}

// The list returns items, total, limit and offset; newest case first by default.
TEST_F(ApiServerTest, ListCases) {
  nlohmann::json body = getJson("/api/v1/cases", 200);
  EXPECT_EQ(body["total"], 2);
  EXPECT_EQ(body["limit"], 50);
  EXPECT_EQ(body["offset"], 0);
  ASSERT_EQ(body["items"].size(), 2u);
  const nlohmann::json& newest = body["items"][0];
  EXPECT_EQ(newest["rule_id"], "dns");
  EXPECT_EQ(newest["severity"], "low");
  EXPECT_EQ(newest["status"], "new");
  EXPECT_EQ(newest["detected"], "2026-01-01T00:00:02Z");
  const nlohmann::json& ssh = body["items"][1];
  EXPECT_EQ(ssh["title"], "SSH brute force: source.ip=10.0.0.5");
  EXPECT_EQ(ssh["alert_count"], 2);
  EXPECT_EQ(ssh["group"], nlohmann::json({{"source.ip", "10.0.0.5"}}));
}

// Query parameters filter, page and sort the list.
TEST_F(ApiServerTest, ListCasesQuery) {
  nlohmann::json acme = getJson("/api/v1/cases?tenant=acme", 200);
  EXPECT_EQ(acme["total"], 1);
  EXPECT_EQ(acme["items"][0]["tenant"], "acme");

  nlohmann::json high = getJson("/api/v1/cases?severity=high&status=new", 200);
  EXPECT_EQ(high["total"], 1);

  nlohmann::json page = getJson("/api/v1/cases?limit=1&offset=1&sort=detected", 200);
  EXPECT_EQ(page["total"], 2);
  EXPECT_EQ(page["limit"], 1);
  EXPECT_EQ(page["offset"], 1);
  ASSERT_EQ(page["items"].size(), 1u);
  EXPECT_EQ(page["items"][0]["rule_id"], "dns");
}

// A case comes with its alerts and evidence; invalid UTF-8 is replaced, not fatal.
TEST_F(ApiServerTest, ShowCase) {
  nlohmann::json list = getJson("/api/v1/cases?tenant=acme", 200);
  int64_t id = list["items"][0]["id"];
  nlohmann::json body = getJson("/api/v1/cases/" + std::to_string(id), 200);
  EXPECT_EQ(body["id"], id);
  ASSERT_EQ(body["alerts"].size(), 2u);
  EXPECT_EQ(body["alerts"][0]["level"], "high");
  EXPECT_EQ(body["alerts"][0]["rule_title"], "SSH brute force");
  EXPECT_EQ(body["alerts"][0]["indicator_hits"][0], "bad-ips:203.0.113.7@source.ip");
  ASSERT_EQ(body["evidence"].size(), 4u);
  EXPECT_EQ(body["evidence"][0]["raw"], "Failed password for root from 10.0.0.5");
  EXPECT_EQ(body["evidence"][1]["raw"], "bad byte \xEF\xBF\xBD");
  EXPECT_EQ(body["evidence"][1]["position"], 1);
}

// Unknown case ids and unknown paths are 404 with a JSON error.
TEST_F(ApiServerTest, NotFoundIsJson) {
  nlohmann::json missing = getJson("/api/v1/cases/999", 404);
  EXPECT_EQ(missing["error"]["code"], "not_found");
  EXPECT_EQ(missing["error"]["message"], "case 999 not found");

  nlohmann::json no_route = getJson("/api/v2/everything", 404);
  EXPECT_EQ(no_route["error"]["code"], "not_found");
  EXPECT_NE(no_route["error"]["message"].get<std::string>().find("/api/v2/everything"),
            std::string::npos);
}

// Bad query values are 400 with the value and the accepted range in the message.
TEST_F(ApiServerTest, BadQueryIs400) {
  nlohmann::json abc = getJson("/api/v1/cases?limit=abc", 400);
  EXPECT_EQ(abc["error"]["code"], "invalid_argument");
  EXPECT_EQ(abc["error"]["message"], "limit=abc is not an integer; use 1..500");

  nlohmann::json big = getJson("/api/v1/cases?limit=501", 400);
  EXPECT_EQ(big["error"]["message"], "limit=501 is out of range; use 1..500");

  nlohmann::json offset = getJson("/api/v1/cases?offset=-1", 400);
  EXPECT_EQ(offset["error"]["code"], "invalid_argument");
  EXPECT_EQ(offset["error"]["message"], "offset=-1 is out of range; use 0 or more");

  nlohmann::json huge = getJson("/api/v1/cases?offset=99999999999999999999", 400);
  EXPECT_EQ(huge["error"]["message"], "offset=99999999999999999999 is out of range; use 0 or more");

  nlohmann::json spaced = getJson("/api/v1/cases?limit=%20%201", 400);
  EXPECT_EQ(spaced["error"]["message"], "limit=  1 is not an integer; use 1..500");

  nlohmann::json plus = getJson("/api/v1/cases?limit=%2B5", 400);
  EXPECT_EQ(plus["error"]["message"], "limit=+5 is not an integer; use 1..500");

  nlohmann::json reversed = getJson(
      "/api/v1/cases?detected_from=2026-02-01T00:00:00Z&detected_to=2026-01-01T00:00:00Z", 400);
  EXPECT_EQ(reversed["error"]["message"],
            "detected_to=2026-01-01T00:00:00Z is earlier than "
            "detected_from=2026-02-01T00:00:00Z; swap the two values");

  nlohmann::json status = getJson("/api/v1/cases?status=open", 400);
  EXPECT_NE(status["error"]["message"].get<std::string>().find("in_progress"), std::string::npos);

  nlohmann::json unknown = getJson("/api/v1/cases?limt=5", 400);
  EXPECT_NE(unknown["error"]["message"].get<std::string>().find("limt"), std::string::npos);

  nlohmann::json twice = getJson("/api/v1/cases?tenant=a&tenant=b", 400);
  EXPECT_NE(twice["error"]["message"].get<std::string>().find("2 times"), std::string::npos);

  nlohmann::json bad_id = getJson("/api/v1/cases/abc", 400);
  EXPECT_EQ(bad_id["error"]["message"],
            "case id abc is not a positive integer; use an id from /api/v1/cases");

  nlohmann::json spaced_id = getJson("/api/v1/cases/3%20", 400);
  EXPECT_EQ(spaced_id["error"]["message"],
            "case id 3  is not a positive integer; use an id from /api/v1/cases");

  nlohmann::json huge_id = getJson("/api/v1/cases/99999999999999999999", 400);
  EXPECT_EQ(huge_id["error"]["message"],
            "case id 99999999999999999999 is out of range; use an id from /api/v1/cases");
}

// A known path with the wrong method is 405 with an Allow header.
TEST_F(ApiServerTest, WrongMethodIs405) {
  httplib::Result result = client_->Delete("/api/v1/cases/1");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 405);
  EXPECT_EQ(result->get_header_value("Allow"), "GET, PATCH");
  nlohmann::json body = nlohmann::json::parse(result->body, nullptr, false);
  EXPECT_EQ(body["error"]["code"], "method_not_allowed");
}

// Routes added with addRoute get path parameters and the request body.
TEST_F(ApiServerTest, AddedRouteIsServed) {
  httplib::Result result = client_->Post("/api/v1/echo/hello", "world", "text/plain");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  EXPECT_EQ(result->body, "hello:world");
}

// A body over max_payload_bytes is rejected with 413 and a JSON error.
TEST_F(ApiServerTest, LargePayloadIs413) {
  httplib::Result result = client_->Post("/api/v1/echo/big", std::string(4096, 'x'), "text/plain");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 413);
  nlohmann::json body = nlohmann::json::parse(result->body, nullptr, false);
  ASSERT_FALSE(body.is_discarded()) << result->body;
  EXPECT_EQ(body["error"]["code"], "payload_too_large");
  EXPECT_NE(body["error"]["message"].get<std::string>().find("limit of 1024 bytes"),
            std::string::npos)
      << result->body;
}

// curl -d sends application/x-www-form-urlencoded. Such a body is still the request body,
// and only the URL's query string counts as query parameters.
TEST_F(ApiServerTest, FormEncodedBodyIsNotQuery) {
  const std::string form = "application/x-www-form-urlencoded";
  httplib::Result created =
      client_->Post("/api/v1/cases", R"({"title":"Lost laptop","tenant":"acme"})", form);
  ASSERT_TRUE(created);
  EXPECT_EQ(created->status, 201) << created->body;

  httplib::Result pair = client_->Post("/api/v1/cases?limit=1", "title=x", form);
  ASSERT_TRUE(pair);
  EXPECT_EQ(pair->status, 400) << pair->body;
  nlohmann::json body = nlohmann::json::parse(pair->body, nullptr, false);
  ASSERT_FALSE(body.is_discarded()) << pair->body;
  const std::string message = body["error"]["message"].get<std::string>();
  EXPECT_NE(message.find("unknown query parameter limit"), std::string::npos) << message;
  EXPECT_EQ(message.find("title"), std::string::npos) << message;

  httplib::Result raw = client_->Post("/api/v1/cases/1/evidence?name=mail.eml",
                                      "From: a@example.com\nSubject: a=b&c", form);
  ASSERT_TRUE(raw);
  EXPECT_EQ(raw->status, 201) << raw->body;
}

// Sends `partial` (a request cut short) to 127.0.0.1:`port` and reads until the server
// closes the connection. Returns what the server sent, or nullopt when it kept the
// connection open for 30 s, which is far beyond any read timeout the tests set.
std::optional<std::string> sendPartialRequest(int port, const std::string& partial) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  timeval bound{30, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &bound, sizeof(bound));
  EXPECT_EQ(send(fd, partial.data(), partial.size(), 0), static_cast<ssize_t>(partial.size()));
  std::string received;
  char buffer[4096];
  ssize_t n = 0;
  while ((n = recv(fd, buffer, sizeof(buffer), 0)) > 0) received.append(buffer, n);
  close(fd);
  if (n < 0) return std::nullopt;
  return received;
}

// A client that stalls in the middle of its request line, headers or body is disconnected
// once read_timeout passes, while other clients are served meanwhile.
TEST_F(ApiServerTest, StalledClientIsDisconnected) {
  ApiServerOptions options;
  options.listen = "127.0.0.1:0";
  options.read_timeout = std::chrono::seconds(1);
  ApiServer server(*store_, metrics_, options);
  ASSERT_TRUE(server.start().ok());

  std::thread stalled_line([&] {
    std::optional<std::string> answer = sendPartialRequest(server.port(), "GET /heal");
    ASSERT_TRUE(answer.has_value()) << "a stalled request line kept its connection";
  });
  httplib::Client other("127.0.0.1", server.port());
  httplib::Result served = other.Get("/healthz");
  ASSERT_TRUE(served);
  EXPECT_EQ(served->status, 200);
  stalled_line.join();

  std::optional<std::string> headers =
      sendPartialRequest(server.port(), "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  ASSERT_TRUE(headers.has_value()) << "stalled headers kept their connection";
  // Whatever the server sends before closing is a rejection, never the endpoint's response.
  EXPECT_EQ(headers->find("200 OK"), std::string::npos) << *headers;

  std::optional<std::string> body = sendPartialRequest(
      server.port(),
      "POST /api/v1/echo/x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\nabc");
  ASSERT_TRUE(body.has_value()) << "a stalled body kept its connection";
  EXPECT_EQ(body->find("200 OK"), std::string::npos) << *body;
  server.stop();
}

// A body whose declared Content-Length is over the limit gets 413 without being sent.
TEST_F(ApiServerTest, DeclaredOversizeBodyIs413) {
  ApiServerOptions options;
  options.listen = "127.0.0.1:0";
  options.read_timeout = std::chrono::seconds(1);
  options.max_payload_bytes = 1024;
  auth_->apply(options);
  ApiServer server(*store_, metrics_, options);
  ASSERT_TRUE(server.start().ok());
  std::optional<std::string> answer = sendPartialRequest(
      server.port(), "POST /api/v1/echo/x HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
                         auth_->adminToken() +
                         "\r\nContent-Length: 5000\r\nConnection: close\r\n\r\n");
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->rfind("HTTP/1.1 413", 0), 0u) << *answer;
  EXPECT_NE(answer->find("payload_too_large"), std::string::npos) << *answer;
}

// Returns the JSON body of the raw HTTP response `answer`, or a discarded value.
nlohmann::json rawJsonBody(const std::string& answer) {
  size_t start = answer.find("\r\n\r\n");
  if (start == std::string::npos) return nlohmann::json::value_t::discarded;
  return nlohmann::json::parse(answer.substr(start + 4), nullptr, false);
}

// Requests that cpp-httplib rejects before any route runs, on a server with the token store
// and audit log and a read timeout of 1 s.
class HttpRejectionTest : public ApiServerTest {
 protected:
  void SetUp() override {
    ApiServerTest::SetUp();
    ApiServerOptions options;
    options.listen = "127.0.0.1:0";
    options.read_timeout = std::chrono::seconds(1);
    options.max_payload_bytes = 1024;
    auth_->apply(options);
    strict_ = std::make_unique<ApiServer>(*store_, metrics_, options);
    strict_->addRoute("POST", "/api/v1/echo/{word}", [](const ApiRequest& request) {
      ApiResponse response;
      response.body = request.body;
      return absl::StatusOr<ApiResponse>(response);
    });
    strict_->addRoute("DELETE", "/api/v1/missing/{kind}", [](const ApiRequest& request) {
      return absl::StatusOr<ApiResponse>(
          absl::NotFoundError(absl::StrCat("no ", request.pathParam("kind"), " to delete")));
    });
    absl::Status started = strict_->start();
    ASSERT_TRUE(started.ok()) << started;
  }

  void TearDown() override {
    if (strict_) strict_->stop();
    ApiServerTest::TearDown();
  }

  std::vector<AuditRecord> auditRecords() {
    absl::StatusOr<AuditPage> page = auth_->audit().list({});
    EXPECT_TRUE(page.ok()) << page.status();
    return page.ok() ? page->items : std::vector<AuditRecord>{};
  }

  uint64_t rejected(const std::string& reason, const std::string& status) {
    return metrics_.sum("vigil_api_rejected_requests_total",
                        {{"reason", reason}, {"status", status}});
  }

  // The Authorization header line of the admin token, with its CRLF.
  std::string bearer() const { return "Authorization: Bearer " + auth_->adminToken() + "\r\n"; }

  std::unique_ptr<ApiServer> strict_;
};

// A negative Content-Length is a malformed header, not an oversize body. cpp-httplib reads
// it as a huge number, and vigild returns 400 with the value instead of 413.
TEST_F(HttpRejectionTest, NegativeContentLengthIs400) {
  std::optional<std::string> answer = sendPartialRequest(
      strict_->port(), "POST /api/v1/echo/x HTTP/1.1\r\nHost: 127.0.0.1\r\n" + bearer() +
                           "Content-Length: -5\r\nConnection: close\r\n\r\nabc");
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->rfind("HTTP/1.1 400", 0), 0u) << *answer;
  nlohmann::json body = rawJsonBody(*answer);
  ASSERT_FALSE(body.is_discarded()) << *answer;
  EXPECT_EQ(body["error"]["code"], "invalid_argument");
  EXPECT_NE(body["error"]["message"].get<std::string>().find("is '-5', not a byte count"),
            std::string::npos)
      << *answer;
  EXPECT_EQ(rejected("invalid_content_length", "400"), 1u);
  std::vector<AuditRecord> records = auditRecords();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].entry.target, "reason=invalid_content_length");
}

// A failed call's audit record names its ?tenant= scope beside the path parameters, so a
// failed deletion of one tenant's content is found under that tenant.
TEST_F(HttpRejectionTest, FailedCallRecordsTenantScope) {
  httplib::Client client("127.0.0.1", strict_->port());
  client.set_bearer_token_auth(auth_->adminToken());
  httplib::Result result = client.Delete("/api/v1/missing/rules?tenant=acme");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 404);
  const std::string long_tenant(300, 'a');
  result = client.Delete(("/api/v1/missing/playbooks?tenant=" + long_tenant).c_str());
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 404);

  std::vector<AuditRecord> records = auditRecords();
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].entry.target, "kind=rules,tenant=acme");
  EXPECT_EQ(records[0].entry.status, 404);
  EXPECT_EQ(records[0].entry.outcome, "error");
  // A value longer than any tenant name is cut to its first 128 bytes.
  EXPECT_EQ(records[1].entry.target, "kind=playbooks,tenant=" + long_tenant.substr(0, 128));
}

// A declared body over the limit gets 413 with the JSON error, an audit record naming the
// token's principal but never the token, and a count by reason.
TEST_F(HttpRejectionTest, OversizeBodyIsAuditedAndCounted) {
  const std::string token = auth_->adminToken();
  std::optional<std::string> answer = sendPartialRequest(
      strict_->port(),
      "POST /api/v1/echo/x?note=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + token +
          "\r\nContent-Length: 5000\r\nConnection: close\r\n\r\n" + std::string(5000, 'x'));
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->rfind("HTTP/1.1 413", 0), 0u) << *answer;
  nlohmann::json body = rawJsonBody(*answer);
  ASSERT_FALSE(body.is_discarded()) << *answer;
  EXPECT_EQ(body["error"]["code"], "payload_too_large");
  const std::string message = body["error"]["message"].get<std::string>();
  EXPECT_NE(message.find("limit of 1024 bytes"), std::string::npos) << message;
  EXPECT_NE(message.find("Content-Length 5000"), std::string::npos) << message;

  std::vector<AuditRecord> records = auditRecords();
  ASSERT_EQ(records.size(), 1u);
  const AuditEntry& entry = records[0].entry;
  EXPECT_EQ(entry.subject, "test-admin");
  EXPECT_EQ(entry.method, "POST");
  EXPECT_EQ(entry.path, "/api/v1/echo/x");
  EXPECT_EQ(entry.status, 413);
  EXPECT_EQ(entry.outcome, "rejected");
  EXPECT_EQ(entry.target, "reason=payload_too_large");
  EXPECT_EQ(entry.remote_addr, "127.0.0.1");
  EXPECT_FALSE(entry.token_id.empty());
  EXPECT_EQ(AuditLog::canonicalRecord(records[0]).find(token), std::string::npos);
  const std::string secret = token.substr(token.rfind('_') + 1);
  EXPECT_EQ(AuditLog::canonicalRecord(records[0]).find(secret), std::string::npos);

  EXPECT_EQ(rejected("payload_too_large", "413"), 1u);
  EXPECT_EQ(metrics_.sum("vigil_api_requests_total", {{"status", "413"}}), 1u);
}

// A POST without Content-Length gets 411 once the read timeout passes, and is audited with
// the token's principal.
TEST_F(HttpRejectionTest, PostWithoutLengthIs411) {
  std::optional<std::string> answer =
      sendPartialRequest(strict_->port(), "POST /api/v1/echo/x HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
                                              bearer() + "Connection: close\r\n\r\n");
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->rfind("HTTP/1.1 411", 0), 0u) << *answer;
  nlohmann::json body = rawJsonBody(*answer);
  ASSERT_FALSE(body.is_discarded()) << *answer;
  EXPECT_EQ(body["error"]["code"], "length_required");
  EXPECT_NE(body["error"]["message"].get<std::string>().find("no Content-Length header"),
            std::string::npos)
      << *answer;

  std::vector<AuditRecord> records = auditRecords();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].entry.subject, "test-admin");
  EXPECT_EQ(records[0].entry.status, 411);
  EXPECT_EQ(records[0].entry.target, "reason=length_required");
  EXPECT_EQ(records[0].entry.remote_addr, "127.0.0.1");
  EXPECT_EQ(rejected("length_required", "411"), 1u);
}

// A garbage request line gets 400 with the JSON error and is counted. It is not audited,
// because no mutating method parsed.
TEST_F(HttpRejectionTest, GarbageRequestLineIs400) {
  std::optional<std::string> answer =
      sendPartialRequest(strict_->port(), "GARBAGE\r\nHost: 127.0.0.1\r\n\r\n");
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->rfind("HTTP/1.1 400", 0), 0u) << *answer;
  nlohmann::json body = rawJsonBody(*answer);
  ASSERT_FALSE(body.is_discarded()) << *answer;
  EXPECT_EQ(body["error"]["code"], "invalid_argument");
  EXPECT_NE(body["error"]["message"].get<std::string>().find("request line is malformed"),
            std::string::npos)
      << *answer;
  EXPECT_EQ(rejected("malformed_request_line", "400"), 1u);
  EXPECT_TRUE(auditRecords().empty());

  std::optional<std::string> unknown_method =
      sendPartialRequest(strict_->port(), "FETCH /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  ASSERT_TRUE(unknown_method.has_value());
  EXPECT_EQ(unknown_method->rfind("HTTP/1.1 400", 0), 0u) << *unknown_method;
  EXPECT_EQ(rejected("malformed_request_line", "400"), 2u);
  EXPECT_EQ(rejected("malformed_headers", "400"), 0u);
}

// A POST whose request line has a bad HTTP version is audited with the remote address
// "unknown", because cpp-httplib fills the peer address only after the headers parse.
TEST_F(HttpRejectionTest, MalformedPostLineIsAudited) {
  std::optional<std::string> answer =
      sendPartialRequest(strict_->port(), "POST /api/v1/echo/x HTTP/9.9\r\n\r\n");
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->rfind("HTTP/1.1 400", 0), 0u) << *answer;
  EXPECT_FALSE(rawJsonBody(*answer).is_discarded()) << *answer;
  std::vector<AuditRecord> records = auditRecords();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].entry.method, "POST");
  EXPECT_EQ(records[0].entry.subject, "anonymous");
  EXPECT_EQ(records[0].entry.remote_addr, "unknown");
  EXPECT_EQ(records[0].entry.target, "reason=malformed_request_line");
  EXPECT_EQ(rejected("malformed_request_line", "400"), 1u);
}

// A header line over 8192 bytes gets 400 naming the headers. cpp-httplib 0.11.4 skips a
// header line without a colon instead of rejecting it.
TEST_F(HttpRejectionTest, LongHeaderIs400) {
  std::optional<std::string> answer = sendPartialRequest(
      strict_->port(), "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " +
                           std::string(9000, 'a') + "\r\n\r\n");
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->rfind("HTTP/1.1 400", 0), 0u) << *answer;
  nlohmann::json body = rawJsonBody(*answer);
  ASSERT_FALSE(body.is_discarded()) << *answer;
  EXPECT_NE(body["error"]["message"].get<std::string>().find("headers of GET /healthz"),
            std::string::npos)
      << *answer;
  EXPECT_EQ(rejected("malformed_headers", "400"), 1u);
}

// A request line over 8192 bytes gets 414 with the JSON error.
TEST_F(HttpRejectionTest, LongUriIs414) {
  std::optional<std::string> answer = sendPartialRequest(
      strict_->port(),
      "GET /" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->rfind("HTTP/1.1 414", 0), 0u) << *answer;
  nlohmann::json body = rawJsonBody(*answer);
  ASSERT_FALSE(body.is_discarded()) << *answer;
  EXPECT_EQ(body["error"]["code"], "uri_too_long");
  EXPECT_EQ(rejected("uri_too_long", "414"), 1u);
}

// A method that no route serves gets 405 instead of cpp-httplib's bare 400.
TEST_F(HttpRejectionTest, TraceIs405) {
  std::optional<std::string> answer = sendPartialRequest(
      strict_->port(), "TRACE /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->rfind("HTTP/1.1 405", 0), 0u) << *answer;
  nlohmann::json body = rawJsonBody(*answer);
  ASSERT_FALSE(body.is_discarded()) << *answer;
  EXPECT_EQ(body["error"]["code"], "method_not_allowed");
  EXPECT_EQ(rejected("method_not_allowed", "405"), 1u);
}

// A body cut short of its Content-Length gets 400 once the read timeout passes, and the
// mutating call is audited.
TEST_F(HttpRejectionTest, ShortBodyIs400) {
  std::optional<std::string> answer =
      sendPartialRequest(strict_->port(), "PUT /api/v1/echo/x HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
                                              bearer() + "Content-Length: 100\r\n\r\nabc");
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->rfind("HTTP/1.1 400", 0), 0u) << *answer;
  EXPECT_FALSE(rawJsonBody(*answer).is_discarded()) << *answer;
  std::vector<AuditRecord> records = auditRecords();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].entry.method, "PUT");
  EXPECT_EQ(records[0].entry.target, "reason=body_incomplete");
  EXPECT_EQ(rejected("body_incomplete", "400"), 1u);
}

// Returns `size` bytes of 'x' as one chunk of a chunked body.
std::string chunk(size_t size) {
  char head[32];
  std::snprintf(head, sizeof(head), "%zx\r\n", size);
  return head + std::string(size, 'x') + "\r\n";
}

// A chunked body is cut off with 413 as soon as it passes the limit. The client never
// sends the last chunk, so a server that read on would respond only after the read
// timeout, and with 400.
TEST_F(HttpRejectionTest, ChunkedBodyOverLimitIs413) {
  std::optional<std::string> answer = sendPartialRequest(
      strict_->port(), "POST /api/v1/echo/x HTTP/1.1\r\nHost: 127.0.0.1\r\n" + bearer() +
                           "Transfer-Encoding: chunked\r\n\r\n" + chunk(1000) + chunk(1000));
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->rfind("HTTP/1.1 413", 0), 0u) << *answer;
  EXPECT_NE(answer->find("Connection: close\r\n"), std::string::npos) << *answer;
  nlohmann::json body = rawJsonBody(*answer);
  ASSERT_FALSE(body.is_discarded()) << *answer;
  EXPECT_EQ(body["error"]["code"], "payload_too_large");
  EXPECT_NE(body["error"]["message"].get<std::string>().find("limit of 1024 bytes"),
            std::string::npos)
      << *answer;
  EXPECT_EQ(rejected("payload_too_large", "413"), 1u);
  std::vector<AuditRecord> records = auditRecords();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].entry.target, "reason=payload_too_large");
  EXPECT_EQ(records[0].entry.subject, "test-admin");
}

// A chunked body within the limit still reaches the route whole.
TEST_F(HttpRejectionTest, ChunkedBodyWithinLimitIsServed) {
  std::optional<std::string> answer = sendPartialRequest(
      strict_->port(), "POST /api/v1/echo/x HTTP/1.1\r\nHost: 127.0.0.1\r\n" + bearer() +
                           "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunk(600) +
                           chunk(424) + "0\r\n\r\n");
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->rfind("HTTP/1.1 200", 0), 0u) << answer->substr(0, 200);
  EXPECT_NE(answer->find("\r\n\r\n" + std::string(1024, 'x')), std::string::npos)
      << answer->substr(0, 200);
}

// A request without a token gets 401 before its body is read. This client sends
// only the headers and one chunk of a chunked body, so a server that read the body first
// would respond only after the read timeout, and with 400.
TEST_F(HttpRejectionTest, UnauthenticatedChunkedBodyIsNotRead) {
  std::optional<std::string> answer = sendPartialRequest(
      strict_->port(),
      "POST /api/v1/echo/x HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n" +
          chunk(1000));
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->rfind("HTTP/1.1 401", 0), 0u) << *answer;
  EXPECT_NE(answer->find("Connection: close\r\n"), std::string::npos) << *answer;
  nlohmann::json body = rawJsonBody(*answer);
  ASSERT_FALSE(body.is_discarded()) << *answer;
  EXPECT_EQ(body["error"]["code"], "unauthenticated");
  EXPECT_EQ(metrics_.sum("vigil_api_requests_total", {{"status", "401"}}), 1u);
  EXPECT_EQ(metrics_.sum("vigil_api_requests_total", {{"status", "400"}}), 0u);
}

// A request without a token and with a small declared body gets 401. The server drops
// that body, so the next request on the connection is served. The second request is sent
// only after the first response arrives, because cpp-httplib 0.11.4 serves only the first
// of two requests that arrive together (checked with two pipelined GETs).
TEST_F(HttpRejectionTest, UnauthenticatedSmallBodyKeepsConnection) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(strict_->port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  timeval bound{30, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &bound, sizeof(bound));
  auto receive = [&](const std::string& until) {
    std::string received;
    char buffer[4096];
    ssize_t n = 0;
    while (received.find(until) == std::string::npos &&
           (n = recv(fd, buffer, sizeof(buffer), 0)) > 0) {
      received.append(buffer, n);
    }
    return received;
  };

  const std::string post =
      "POST /api/v1/echo/x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\nhello";
  ASSERT_EQ(send(fd, post.data(), post.size(), 0), static_cast<ssize_t>(post.size()));
  const std::string first = receive("\"}}");
  EXPECT_EQ(first.rfind("HTTP/1.1 401", 0), 0u) << first;
  EXPECT_EQ(first.find("Connection: close"), std::string::npos) << first;

  const std::string get = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(send(fd, get.data(), get.size(), 0), static_cast<ssize_t>(get.size()));
  const std::string second = receive(R"({"status":"ok"})");
  close(fd);
  EXPECT_EQ(second.rfind("HTTP/1.1 200", 0), 0u) << second;
  EXPECT_NE(second.find(R"({"status":"ok"})"), std::string::npos) << second;
  EXPECT_EQ(metrics_.sum("vigil_api_requests_total", {{"status", "400"}}), 0u);
}

// A path with an encoded line break gets the same token check as any path. With a token it
// gets the router's 404, whose log line shows the break escaped, so the path cannot forge a
// log line.
TEST_F(HttpRejectionTest, PathWithLineBreakIsRouted) {
  const std::string path = "/x%0a2026-12-06T10:00:00Z%20info%20forged";
  std::optional<std::string> anonymous = sendPartialRequest(
      strict_->port(), "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  ASSERT_TRUE(anonymous.has_value());
  EXPECT_EQ(anonymous->rfind("HTTP/1.1 401", 0), 0u) << *anonymous;
  EXPECT_EQ(rawJsonBody(*anonymous)["error"]["code"], "unauthenticated") << *anonymous;

  testing::LogCapture log;
  std::optional<std::string> admin =
      sendPartialRequest(strict_->port(), "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
                                              bearer() + "Connection: close\r\n\r\n");
  ASSERT_TRUE(admin.has_value());
  EXPECT_EQ(admin->rfind("HTTP/1.1 404", 0), 0u) << *admin;
  EXPECT_EQ(rawJsonBody(*admin)["error"]["code"], "not_found") << *admin;
  const std::string text = log.text();
  EXPECT_NE(text.find("path=/x\\x0a2026-12-06T10:00:00Z info forged"), std::string::npos) << text;
  EXPECT_EQ(text.find("\n2026-12-06T10:00:00Z info forged"), std::string::npos) << text;
}

// A 404 that cpp-httplib produces itself has the code not_found, like the router's 404.
TEST(HttpRejectionClassifyTest, NotFoundCode) {
  httplib::Request request;
  request.method = "GET";
  request.path = "/missing";
  request.remote_addr = "127.0.0.1";
  internal::HttpRejection rejection = internal::classifyHttpRejection(request, 404, {1024, {}});
  EXPECT_EQ(rejection.status, 404);
  EXPECT_EQ(rejection.code, "not_found");
}

// An evidence content type must be a media type. A line break in the JSON field or a
// control character in a raw upload's Content-Type gets 400 naming the value and the fix.
TEST_F(ApiServerTest, EvidenceContentTypeIsMediaType) {
  httplib::Result created = client_->Post(
      "/api/v1/cases", R"({"title":"Phishing mail","tenant":"acme"})", "application/json");
  ASSERT_TRUE(created);
  ASSERT_EQ(created->status, 201) << created->body;
  const int64_t id = nlohmann::json::parse(created->body)["id"].get<int64_t>();
  const std::string path = absl::StrCat("/api/v1/cases/", id, "/evidence");

  auto upload_json = [&](const std::string& content_type) {
    nlohmann::json body = {
        {"name", "note.txt"}, {"content_base64", "aGk="}, {"content_type", content_type}};
    return client_->Post(path, body.dump(), "application/json");
  };
  httplib::Result injected = upload_json("text/plain\r\nSet-Cookie: x");
  ASSERT_TRUE(injected);
  EXPECT_EQ(injected->status, 400) << injected->body;
  nlohmann::json error = nlohmann::json::parse(injected->body, nullptr, false);
  ASSERT_FALSE(error.is_discarded()) << injected->body;
  EXPECT_EQ(error["error"]["code"], "invalid_argument");
  const std::string message = error["error"]["message"].get<std::string>();
  EXPECT_NE(message.find("content type 'text/plain\r\nSet-Cookie: x' is not a valid media type"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("control character 0x0d at byte 10"), std::string::npos) << message;
  EXPECT_NE(message.find("such as 'text/plain; charset=utf-8'"), std::string::npos) << message;

  for (const char* bad : {"text", "text/", "/plain", "text/plain;", "text/plain; a", "text/pl ain",
                          "text/plain; a=\"open", "text/plain\x7f"}) {
    httplib::Result r = upload_json(bad);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << bad << " -> " << r->body;
  }

  // A raw upload takes the type from its Content-Type header, sent here byte for byte.
  const std::string raw_request = absl::StrCat(
      "POST ", path, "?name=raw.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ",
      auth_->adminToken(),
      "\r\nContent-Type: text/x\x01y\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi");
  std::optional<std::string> raw = sendPartialRequest(server_->port(), raw_request);
  ASSERT_TRUE(raw.has_value());
  EXPECT_EQ(raw->rfind("HTTP/1.1 400", 0), 0u) << *raw;
  EXPECT_NE(raw->find("control character 0x01 at byte 6"), std::string::npos) << *raw;

  // Valid media types, with parameters and a quoted value, are stored and sent back.
  for (const std::string& good : std::vector<std::string>{
           "message/rfc822", "text/plain; charset=utf-8", "text/plain;format=\"a \\\"b\\\"\""}) {
    nlohmann::json body = {
        {"name", "file.txt"}, {"content_base64", absl::Base64Escape(good)}, {"content_type", good}};
    httplib::Result r = client_->Post(path, body.dump(), "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 201) << good << " -> " << r->body;
    nlohmann::json file = nlohmann::json::parse(r->body, nullptr, false);
    ASSERT_FALSE(file.is_discarded()) << r->body;
    EXPECT_EQ(file["content_type"], good);
    httplib::Result download =
        client_->Get(absl::StrCat(path, "/", file["sha256"].get<std::string>()));
    ASSERT_TRUE(download);
    EXPECT_EQ(download->status, 200);
    EXPECT_EQ(download->get_header_value("X-Vigil-Content-Type"), good);
  }
}

// A second server on a taken port fails with Unavailable naming the address.
TEST_F(ApiServerTest, PortInUseIsReported) {
  ApiServerOptions options;
  options.listen = server_->address();
  ApiServer second(*store_, metrics_, options);
  absl::Status status = second.start();
  EXPECT_TRUE(absl::IsUnavailable(status)) << status;
  EXPECT_NE(status.message().find(server_->address()), absl::string_view::npos);
}

// Malformed listen addresses are rejected before binding.
TEST_F(ApiServerTest, BadListenAddress) {
  for (const char* listen : {"localhost", "127.0.0.1:http", "::1:80", ":8080", "1.2.3.4:70000"}) {
    ApiServerOptions options;
    options.listen = listen;
    ApiServer bad(*store_, metrics_, options);
    absl::Status status = bad.start();
    EXPECT_TRUE(absl::IsInvalidArgument(status)) << listen << ": " << status;
    EXPECT_NE(status.message().find(listen), absl::string_view::npos) << status;
  }
}

// IPv6 loopback works with the bracket form.
TEST_F(ApiServerTest, ListensOnIpv6Loopback) {
  ApiServerOptions options;
  options.listen = "[::1]:0";
  ApiServer v6(*store_, metrics_, options);
  absl::Status status = v6.start();
  if (!status.ok()) GTEST_SKIP() << "no IPv6 loopback here: " << status;
  httplib::Client client("::1", v6.port());
  httplib::Result result = client.Get("/healthz");
  ASSERT_TRUE(result) << httplib::to_string(result.error());
  EXPECT_EQ(result->status, 200);
  EXPECT_EQ(v6.address(), "[::1]:" + std::to_string(v6.port()));
}

// Each absl code maps to its HTTP status.
TEST(HttpStatusTest, Mapping) {
  EXPECT_EQ(httpStatusFor(absl::StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(httpStatusFor(absl::StatusCode::kNotFound), 404);
  EXPECT_EQ(httpStatusFor(absl::StatusCode::kFailedPrecondition), 409);
  EXPECT_EQ(httpStatusFor(absl::StatusCode::kAborted), 409);
  EXPECT_EQ(httpStatusFor(absl::StatusCode::kOutOfRange), 400);
  EXPECT_EQ(httpStatusFor(absl::StatusCode::kDeadlineExceeded), 504);
  EXPECT_EQ(httpStatusFor(absl::StatusCode::kResourceExhausted), 429);
  EXPECT_EQ(httpStatusFor(absl::StatusCode::kUnavailable), 503);
  EXPECT_EQ(httpStatusFor(absl::StatusCode::kInternal), 500);
  EXPECT_EQ(httpStatusFor(absl::StatusCode::kDataLoss), 500);
  ApiResponse response = errorResponse(absl::UnavailableError("store is busy"));
  EXPECT_EQ(response.status, 503);
  EXPECT_EQ(response.body, R"({"error":{"code":"unavailable","message":"store is busy"}})");
}

}  // namespace
}  // namespace vigil::mgmt
