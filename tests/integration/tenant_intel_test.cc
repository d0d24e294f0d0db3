// Tenant-owned indicators end to end: the built vigild with two tenants, each on its own
// syslog listener on loopback, a feed of every tenant and a feed per tenant, and analyst
// indicators added per tenant through the API. Sightings show which indicator each
// tenant's events matched.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "daemon_process.h"
#include "mgmt/auth_store.h"

namespace vigil::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// The same line for both tenants: it names every indicator of the test.
constexpr char kLine[] =
    "<38>Oct 11 22:14:21 web1 app: lookup shared.example acme-only.example both.example "
    "globex-analyst.example";

class TenantIntelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = makeTempDir("vigil-tenant-intel");
    acme_port_ = freePort(SOCK_DGRAM);
    globex_port_ = freePort(SOCK_DGRAM);
    api_port_ = freePort(SOCK_STREAM);
    writeFile(dir_ + "/shared.txt", "shared.example\n");
    writeFile(dir_ + "/acme.txt", "acme-only.example\nboth.example\n");
    writeFile(dir_ + "/globex.txt", "both.example\n");
    writeFile(dir_ + "/vigil.yaml",
              "state_dir: " + dir_ + "/state\n" +
                  "sources:\n"
                  "  - {name: acme-udp, type: udp, tenant: acme, listen: '127.0.0.1:" +
                  std::to_string(acme_port_) +
                  "'}\n"
                  "  - {name: globex-udp, type: udp, tenant: globex, listen: '127.0.0.1:" +
                  std::to_string(globex_port_) +
                  "'}\n"
                  "intel:\n"
                  "  lists:\n"
                  "    - {name: shared, path: shared.txt}\n"
                  "    - {name: acme-feed, path: acme.txt, tenant: acme}\n"
                  "    - {name: globex-feed, path: globex.txt, tenant: globex}\n"
                  "api: {listen: '127.0.0.1:" +
                  std::to_string(api_port_) + "'}\n");
    std::filesystem::create_directories(dir_ + "/state");
    auto auth = mgmt::AuthStore::open(mgmt::AuthStore::defaultPath(dir_ + "/state"));
    ASSERT_TRUE(auth.ok()) << auth.status();
    admin_token_ = issue(**auth, mgmt::Role::kAdmin, {});
    ASSERT_TRUE((*auth)->ensureTenant("acme").ok());
    ASSERT_TRUE((*auth)->ensureTenant("globex").ok());
    acme_analyst_ = issue(**auth, mgmt::Role::kAnalyst, {"acme"});
  }

  void TearDown() override { std::filesystem::remove_all(dir_); }

  static std::string issue(mgmt::AuthStore& auth, mgmt::Role role,
                           std::vector<std::string> tenants) {
    mgmt::TokenRequest request;
    request.name = std::string(mgmt::roleName(role)) + "-token";
    request.role = role;
    request.tenants = std::move(tenants);
    auto issued = auth.createToken(request);
    EXPECT_TRUE(issued.ok()) << issued.status();
    return issued.ok() ? issued->token : std::string();
  }

  httplib::Client client(const std::string& token) {
    httplib::Client c("127.0.0.1", api_port_);
    c.set_bearer_token_auth(token);
    c.set_read_timeout(30);
    return c;
  }

  // "indicator@tenant" -> hits, from the sightings that `token` may see.
  std::map<std::string, int> sightings(const std::string& token, const std::string& query = "") {
    auto res = client(token).Get(("/api/v1/intel/sightings" + query).c_str());
    std::map<std::string, int> out;
    last_response_ = res ? std::to_string(res->status) + " " + res->body
                         : "no response: " + httplib::to_string(res.error());
    if (!res || res->status != 200) return out;
    const nlohmann::json body = nlohmann::json::parse(res->body);
    for (const auto& s : body["indicators"]) {
      const std::string tenant = s["tenant"].is_null() ? "*" : s["tenant"].get<std::string>();
      out[s["indicator"].get<std::string>() + "@" + tenant] = s["hits"].get<int>();
    }
    return out;
  }

  std::string dir_;
  std::string last_response_;  // of the latest sightings() call, for failure messages
  std::string admin_token_;
  std::string acme_analyst_;
  int acme_port_ = 0;
  int globex_port_ = 0;
  int api_port_ = 0;
};

// Each tenant's events match the indicators of every tenant and its own, never the
// other tenant's, for feeds and for analyst indicators added through the API.
TEST_F(TenantIntelTest, EventsMatchOnlyOwnAndGlobalIndicators) {
  DaemonProcess daemon({"--config", dir_ + "/vigil.yaml"}, dir_ + "/vigild.log");
  ASSERT_TRUE(waitHealthy(api_port_)) << daemon.log();

  // globex's analyst list gets a value that acme's events carry too.
  auto added = client(admin_token_)
                   .Post("/api/v1/intel/indicators?tenant=globex", "globex-analyst.example\n",
                         "text/plain");
  ASSERT_TRUE(added);
  ASSERT_EQ(added->status, 200) << added->body;
  // An acme analyst may not add to globex's list, nor to the list of every tenant.
  for (const char* path : {"/api/v1/intel/indicators?tenant=globex", "/api/v1/intel/indicators"}) {
    auto refused = client(acme_analyst_).Post(path, "sneaky.example\n", "text/plain");
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->status, 403) << path << ": " << refused->body;
  }

  sendUdp(acme_port_, kLine);
  sendUdp(acme_port_, kLine);
  sendUdp(globex_port_, kLine);
  const std::map<std::string, int> expected = {
      {"shared.example@*", 3},         {"acme-only.example@acme", 2}, {"both.example@acme", 2},
      {"both.example@globex", 1},      {"globex-analyst.example@globex", 1}};
  std::map<std::string, int> seen;
  ASSERT_TRUE(eventually([&] {
    seen = sightings(admin_token_);
    return seen == expected;
  })) << nlohmann::json(seen).dump() << "\n" << last_response_ << "\n" << daemon.log();

  // The acme analyst sees acme's own indicators only: not globex's, and not the
  // indicator of every tenant, whose count includes globex's events.
  EXPECT_EQ(sightings(acme_analyst_),
            (std::map<std::string, int>{{"acme-only.example@acme", 2}, {"both.example@acme", 2}}));
  auto other = client(acme_analyst_).Get("/api/v1/intel/sightings?tenant=globex");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 403) << other->body;
  EXPECT_EQ(daemon.stop(), 0) << daemon.log();
}

// Content pushes of intel are per tenant: each tenant's list has its own versions, a
// rollback of acme's list leaves globex's as it is, and a tenant's dry run uses that
// tenant's view.
TEST_F(TenantIntelTest, RollbackOfOneTenantLeavesOthers) {
  DaemonProcess daemon({"--config", dir_ + "/vigil.yaml"}, dir_ + "/vigild.log");
  ASSERT_TRUE(waitHealthy(api_port_)) << daemon.log();
  auto push = [&](const std::string& tenant, const std::string& value) {
    nlohmann::json body = {{"files", {{"list.txt", value + "\n"}}}};
    auto res = client(admin_token_)
                   .Post(("/api/v1/content/intel?tenant=" + tenant).c_str(), body.dump(),
                         "application/json");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 201) << res->body;
  };
  auto list = [&](const std::string& tenant) {
    auto res = client(admin_token_).Get(("/api/v1/intel/indicators?tenant=" + tenant).c_str());
    EXPECT_TRUE(res) << tenant;
    if (!res) return nlohmann::json();
    EXPECT_EQ(res->status, 200) << res->body;
    return nlohmann::json::parse(res->body)["indicators"];
  };
  push("acme", "acme-v1.example");
  push("acme", "acme-v2.example");
  push("globex", "globex-v1.example");
  EXPECT_EQ(list("acme"), nlohmann::json::array({"acme-v2.example"}));

  auto rollback = client(admin_token_)
                      .Post("/api/v1/content/intel/versions/1/activate?tenant=acme", "",
                            "application/json");
  ASSERT_TRUE(rollback);
  ASSERT_EQ(rollback->status, 200) << rollback->body;
  EXPECT_EQ(list("acme"), nlohmann::json::array({"acme-v1.example"}));
  EXPECT_EQ(list("globex"), nlohmann::json::array({"globex-v1.example"}));
  auto globex_versions =
      client(admin_token_).Get("/api/v1/content/intel/versions?tenant=globex");
  ASSERT_TRUE(globex_versions);
  nlohmann::json versions = nlohmann::json::parse(globex_versions->body)["versions"];
  ASSERT_EQ(versions.size(), 1u) << globex_versions->body;
  EXPECT_EQ(versions[0]["active"], true);

  // Live events after the rollback: acme matches v1 only, globex its own value only.
  const std::string line =
      "<38>Oct 11 22:14:21 web1 app: lookup acme-v1.example acme-v2.example globex-v1.example";
  sendUdp(acme_port_, line);
  sendUdp(globex_port_, line);
  const std::map<std::string, int> expected = {{"acme-v1.example@acme", 1},
                                               {"globex-v1.example@globex", 1}};
  std::map<std::string, int> seen;
  ASSERT_TRUE(eventually([&] {
    seen = sightings(admin_token_);
    return seen == expected;
  })) << nlohmann::json(seen).dump() << "\n" << last_response_ << "\n" << daemon.log();

  // A dry run of globex's list runs as globex: raw lines match, and an event of another
  // tenant is refused with the tenant named.
  nlohmann::json dry = {{"files", {{"list.txt", "dry.example\n"}}},
                        {"events", {"<38>Oct 11 22:14:21 web1 app: dry.example"}}};
  auto ok = client(admin_token_)
                .Post("/api/v1/content/intel?dry_run=true&tenant=globex", dry.dump(),
                      "application/json");
  ASSERT_TRUE(ok);
  ASSERT_EQ(ok->status, 200) << ok->body;
  nlohmann::json matches = nlohmann::json::parse(ok->body)["result"]["matches"];
  ASSERT_EQ(matches.size(), 1u) << ok->body;
  EXPECT_EQ(matches[0]["tenant"], "globex");
  dry["events"] = {{{"raw", "<38>Oct 11 22:14:21 web1 app: dry.example"}, {"tenant", "acme"}}};
  auto refused = client(admin_token_)
                     .Post("/api/v1/content/intel?dry_run=true&tenant=globex", dry.dump(),
                           "application/json");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 400) << refused->body;
  EXPECT_NE(refused->body.find("'acme'"), std::string::npos) << refused->body;
  EXPECT_EQ(daemon.stop(), 0) << daemon.log();
}

// Analyst indicators added through the API survive a restart of vigild, for each tenant
// and for every tenant. So do values added after an intel content push, because the
// restarted daemon loads the saved lists and not the stored content version.
TEST_F(TenantIntelTest, AnalystIndicatorsSurviveRestart) {
  auto add = [&](const std::string& query, const std::string& text) {
    auto res =
        client(admin_token_).Post(("/api/v1/intel/indicators" + query).c_str(), text, "text/plain");
    ASSERT_TRUE(res) << query;
    ASSERT_EQ(res->status, 200) << query << ": " << res->body;
    EXPECT_EQ(nlohmann::json::parse(res->body)["loaded"], 1) << res->body;
  };
  auto list = [&](const std::string& query) {
    auto res = client(admin_token_).Get(("/api/v1/intel/indicators" + query).c_str());
    EXPECT_TRUE(res) << query;
    if (!res || res->status != 200) return nlohmann::json();
    return nlohmann::json::parse(res->body)["indicators"];
  };
  {
    DaemonProcess daemon({"--config", dir_ + "/vigil.yaml"}, dir_ + "/vigild.log");
    ASSERT_TRUE(waitHealthy(api_port_)) << daemon.log();
    nlohmann::json body = {{"files", {{"list.txt", "acme-pushed.example\n"}}}};
    auto pushed = client(admin_token_)
                      .Post("/api/v1/content/intel?tenant=acme", body.dump(), "application/json");
    ASSERT_TRUE(pushed);
    ASSERT_EQ(pushed->status, 201) << pushed->body;
    add("?tenant=acme", "acme-added.example\n");
    add("?tenant=globex", "globex-analyst.example\n");
    add("", "everyone.example\n");
    EXPECT_EQ(daemon.stop(), 0) << daemon.log();
  }

  DaemonProcess daemon({"--config", dir_ + "/vigil.yaml"}, dir_ + "/vigild-2.log");
  ASSERT_TRUE(waitHealthy(api_port_)) << daemon.log();
  EXPECT_EQ(list("?tenant=acme"),
            nlohmann::json::array({"acme-pushed.example", "acme-added.example"}));
  EXPECT_EQ(list("?tenant=globex"), nlohmann::json::array({"globex-analyst.example"}));
  EXPECT_EQ(list(""), nlohmann::json::array({"everyone.example"}));

  // The restored values are in the snapshot that live events match.
  sendUdp(globex_port_, kLine);
  std::map<std::string, int> seen;
  ASSERT_TRUE(eventually([&] {
    seen = sightings(admin_token_);
    return seen.count("globex-analyst.example@globex") == 1;
  })) << nlohmann::json(seen).dump()
      << "\n"
      << last_response_ << "\n"
      << daemon.log();
  EXPECT_EQ(daemon.stop(), 0) << daemon.log();
}

}  // namespace
}  // namespace vigil::testing
