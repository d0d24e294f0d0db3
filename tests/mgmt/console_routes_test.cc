// The web console as vigild serves it: routes, content types, caching and security
// headers, and static checks on the embedded files that keep case data from ever being
// parsed as HTML.
#include "mgmt/internal/console_routes.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <regex>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "mgmt/api_server.h"
#include "mgmt_test_util.h"

namespace vigil::mgmt {
namespace {

using internal::ConsoleAsset;
using internal::consoleAssets;

const ConsoleAsset* findAsset(absl::string_view name) {
  for (const ConsoleAsset& asset : consoleAssets()) {
    if (asset.name == name) return &asset;
  }
  return nullptr;
}

// Every match of capture group 1 of `pattern` in `text`.
std::vector<std::string> captures(const std::string& text, const std::string& pattern) {
  std::vector<std::string> found;
  std::regex re(pattern);
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator();
       ++it) {
    found.push_back((*it)[1].str());
  }
  return found;
}

class ConsoleRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<CaseStore>> store = CaseStore::open(dir_.file("cases.db"));
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    ApiServerOptions options;
    options.listen = "127.0.0.1:0";
    server_ = std::make_unique<ApiServer>(*store_, metrics_, options);
    absl::Status started = server_->start();
    ASSERT_TRUE(started.ok()) << started;
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
  }

  void TearDown() override {
    if (server_) server_->stop();
  }

  testing::TempDir dir_;
  MetricsRegistry metrics_;
  std::unique_ptr<CaseStore> store_;
  std::unique_ptr<ApiServer> server_;
  std::unique_ptr<httplib::Client> client_;
};

// GET / and /console/ return index.html with the HTML type and every security header.
TEST_F(ConsoleRoutesTest, RootServesIndexWithSecurityHeaders) {
  const ConsoleAsset* index = findAsset("index.html");
  ASSERT_NE(index, nullptr);
  for (const char* path : {"/", "/console", "/console/", "/console/index.html"}) {
    httplib::Result result = client_->Get(path);
    ASSERT_TRUE(result) << path;
    EXPECT_EQ(result->status, 200) << path;
    EXPECT_EQ(result->body, index->body) << path;
    EXPECT_EQ(result->get_header_value("Content-Type"), "text/html; charset=utf-8") << path;
    EXPECT_EQ(result->get_header_value("Content-Security-Policy"),
              internal::kConsoleContentSecurityPolicy)
        << path;
    EXPECT_EQ(result->get_header_value("X-Content-Type-Options"), "nosniff") << path;
    EXPECT_EQ(result->get_header_value("X-Frame-Options"), "DENY") << path;
    EXPECT_EQ(result->get_header_value("Referrer-Policy"), "no-referrer") << path;
    EXPECT_EQ(result->get_header_value("Cache-Control"), "no-cache") << path;
    EXPECT_EQ(result->get_header_value("ETag"),
              "\"" + std::string(index->sha256.substr(0, 32)) + "\"")
        << path;
  }
}

// The policy allows scripts and styles from the appliance only, with no inline code or
// eval, and enforces Trusted Types.
TEST_F(ConsoleRoutesTest, PolicyForbidsInlineCode) {
  const std::string policy(internal::kConsoleContentSecurityPolicy);
  EXPECT_NE(policy.find("default-src 'none'"), std::string::npos);
  EXPECT_NE(policy.find("script-src 'self';"), std::string::npos);
  EXPECT_NE(policy.find("style-src 'self';"), std::string::npos);
  EXPECT_NE(policy.find("frame-ancestors 'none'"), std::string::npos);
  EXPECT_NE(policy.find("require-trusted-types-for 'script'"), std::string::npos);
  EXPECT_EQ(policy.find("unsafe"), std::string::npos);
  EXPECT_EQ(policy.find("data:"), std::string::npos);
  EXPECT_EQ(policy.find('*'), std::string::npos);
}

// Each embedded file is served under /console/ with its bytes and a known content type.
TEST_F(ConsoleRoutesTest, EveryAssetServedWithItsType) {
  ASSERT_GE(consoleAssets().size(), 5u);
  for (const ConsoleAsset& asset : consoleAssets()) {
    const std::string path = "/console/" + std::string(asset.name);
    httplib::Result result = client_->Get(path);
    ASSERT_TRUE(result) << path;
    EXPECT_EQ(result->status, 200) << path;
    EXPECT_EQ(result->body, asset.body) << path;
    EXPECT_NE(result->get_header_value("Content-Type"), "application/octet-stream") << path;
    EXPECT_EQ(result->get_header_value("Content-Type"), internal::consoleContentType(asset.name))
        << path;
    EXPECT_FALSE(result->get_header_value("Content-Security-Policy").empty()) << path;
  }
}

// Extensions map to the types browsers need to run modules and apply styles.
TEST(ConsoleContentTypeTest, KnownExtensions) {
  EXPECT_EQ(internal::consoleContentType("app.js"), "text/javascript; charset=utf-8");
  EXPECT_EQ(internal::consoleContentType("console.css"), "text/css; charset=utf-8");
  EXPECT_EQ(internal::consoleContentType("index.html"), "text/html; charset=utf-8");
  EXPECT_EQ(internal::consoleContentType("favicon.svg"), "image/svg+xml");
  EXPECT_EQ(internal::consoleContentType("APP.JS"), "text/javascript; charset=utf-8");
  EXPECT_EQ(internal::consoleContentType("archive.tar"), "application/octet-stream");
}

// A request that names the current ETag gets 304 without a body; a stale one gets 200.
TEST_F(ConsoleRoutesTest, IfNoneMatchRevalidates) {
  httplib::Result first = client_->Get("/console/app.js");
  ASSERT_TRUE(first);
  const std::string etag = first->get_header_value("ETag");
  ASSERT_FALSE(etag.empty());

  for (const std::string& header : {etag, "W/" + etag, "\"other\", " + etag, std::string("*")}) {
    httplib::Result again = client_->Get("/console/app.js", {{"If-None-Match", header}});
    ASSERT_TRUE(again) << header;
    EXPECT_EQ(again->status, 304) << header;
    EXPECT_TRUE(again->body.empty()) << header;
    EXPECT_EQ(again->get_header_value("ETag"), etag) << header;
  }
  httplib::Result stale = client_->Get("/console/app.js", {{"If-None-Match", "\"0123\""}});
  ASSERT_TRUE(stale);
  EXPECT_EQ(stale->status, 200);
  EXPECT_EQ(stale->body, first->body);
}

// Names that are not embedded, and other methods, get the API's JSON errors. A name under
// /console/ is looked up without a token (404); any other path, and another method on a
// console file, needs a token first (401), so nothing is served either way. cpp-httplib
// percent-decodes the path before routing, so /console/%2e%2e/app.js arrives as
// /console/../app.js (three segments, no route) while /console/%2e%2e is the name "..".
TEST_F(ConsoleRoutesTest, UnknownFileIsNotFound) {
  struct Probe {
    const char* path;
    int status;
  };
  for (const Probe& probe : {Probe{"/console/missing.js", 404},
                             Probe{"/console/../mgmt/console/app.js", 401},
                             Probe{"/console/%2e%2e/app.js", 401}, Probe{"/console/%2e%2e", 404},
                             Probe{"/index.html", 401}}) {
    httplib::Result result = client_->Get(probe.path);
    ASSERT_TRUE(result) << probe.path;
    EXPECT_EQ(result->status, probe.status) << probe.path;
    EXPECT_EQ(result->get_header_value("Content-Type"), "application/json") << probe.path;
    EXPECT_EQ(result->body.find("import "), std::string::npos) << probe.path;
  }
  httplib::Result post = client_->Post("/console/app.js", "x", "text/plain");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 401);
}

// Every script and stylesheet index.html loads, and every module a script imports, is
// embedded, so a typo in a file name fails here instead of in a browser.
TEST(ConsoleAssetsTest, ReferencesResolve) {
  const ConsoleAsset* index = findAsset("index.html");
  ASSERT_NE(index, nullptr);
  const std::string html(index->body);
  std::vector<std::string> referenced = captures(html, R"((?:src|href)="/console/([^"]+)\")");
  EXPECT_GE(referenced.size(), 3u) << html;
  for (const ConsoleAsset& asset : consoleAssets()) {
    if (!absl::EndsWith(asset.name, ".js")) continue;
    const std::string script(asset.body);
    for (const std::string& name : captures(script, R"(from '\./([^']+)')")) {
      referenced.push_back(name);
    }
  }
  for (const std::string& name : referenced) {
    EXPECT_NE(findAsset(name), nullptr) << name << " is referenced but not embedded";
  }
}

// The HTML carries no inline script, event handler attribute or inline style, which the
// policy would block.
TEST(ConsoleAssetsTest, HtmlHasNoInlineCode) {
  for (const ConsoleAsset& asset : consoleAssets()) {
    if (!absl::EndsWith(asset.name, ".html")) continue;
    const std::string html(asset.body);
    std::vector<std::string> scripts = captures(html, R"(<script([^>]*)>)");
    ASSERT_FALSE(scripts.empty()) << asset.name;
    for (const std::string& attributes : scripts) {
      EXPECT_NE(attributes.find(" src=\"/console/"), std::string::npos)
          << asset.name << ": inline <script" << attributes << ">";
    }
    EXPECT_TRUE(captures(html, R"(\s(on[a-z]+)\s*=)").empty()) << asset.name;
    EXPECT_TRUE(captures(html, R"(\s(style)\s*=)").empty()) << asset.name;
    EXPECT_EQ(html.find("<style"), std::string::npos) << asset.name;
  }
}

// No script parses strings as HTML or code: attacker-controlled case data must only ever
// reach the page as text nodes.
TEST(ConsoleAssetsTest, ScriptsNeverParseHtml) {
  const std::vector<std::string> sinks = {"innerHTML",  "outerHTML", "insertAdjacentHTML",
                                          "document.write", "DOMParser", "createContextualFragment",
                                          "eval(",     "new Function", "setTimeout('",
                                          "srcdoc"};
  int scripts = 0;
  for (const ConsoleAsset& asset : consoleAssets()) {
    if (!absl::EndsWith(asset.name, ".js")) continue;
    ++scripts;
    for (const std::string& sink : sinks) {
      EXPECT_EQ(asset.body.find(sink), absl::string_view::npos)
          << asset.name << " uses " << sink;
    }
  }
  EXPECT_GE(scripts, 5);
}

}  // namespace
}  // namespace vigil::mgmt
