// Runs the built vigilctl binary against a real ApiServer on loopback.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "mgmt/api_server.h"
#include "auth_test_util.h"
#include "mgmt_test_util.h"

namespace vigil::mgmt {
namespace {

using testing::kSecond;
using testing::kT0;
using testing::makeAlert;

constexpr const char* kVigilctl = VIGIL_BINARY_DIR "/mgmt/vigilctl";

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Returns a loopback port that nothing listens on (bound once, then closed).
int closedPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

class VigilctlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(kVigilctl))
        << kVigilctl << " is missing; build the vigilctl target before these tests";
    absl::StatusOr<std::unique_ptr<CaseStore>> store = CaseStore::open(dir_.file("cases.db"));
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);

    correlate::Alert ssh = makeAlert("ssh", "high", "acme", {{"source.ip", "10.0.0.5"}}, kT0);
    ssh.rule_title = "SSH brute force";
    // Evidence with a terminal escape sequence: ESC [ 2 J (clear screen).
    ssh.evidence = {"Failed password for root", "evil \x1b[2J line"};
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
    auth_->apply(options);
    server_ = std::make_unique<ApiServer>(*store_, metrics_, options);
    absl::Status started = server_->start();
    ASSERT_TRUE(started.ok()) << started;
    api_ = "http://" + server_->address();
  }

  // Runs vigilctl with `args` (already shell-quoted where needed) and `env` prefix, with
  // the admin token in VIGIL_TOKEN.
  RunResult run(const std::string& args, const std::string& env = "env -u VIGIL_API") {
    const std::string err_path = dir_.file("stderr.txt");
    const std::string command = env + " VIGIL_TOKEN=" + auth_->adminToken() + " " + kVigilctl +
                                " " + args + " 2>" + err_path;
    RunResult result;
    FILE* pipe = popen(command.c_str(), "r");
    if (pipe == nullptr) {
      ADD_FAILURE() << "popen failed for " << command;
      return result;
    }
    char buffer[4096];
    size_t n = 0;
    while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) result.out.append(buffer, n);
    int status = pclose(pipe);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::ifstream err(err_path);
    std::stringstream text;
    text << err.rdbuf();
    result.err = text.str();
    return result;
  }

  testing::TempDir dir_;
  MetricsRegistry metrics_;
  std::unique_ptr<CaseStore> store_;
  std::unique_ptr<testing::TestAuth> auth_;
  std::unique_ptr<ApiServer> server_;
  std::string api_;
};

// "cases list" prints a header row and one row per case, newest first.
TEST_F(VigilctlTest, ListPrintsTable) {
  RunResult r = run("--api " + api_ + " cases list");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream lines(r.out);
  std::string header, first, second, footer;
  std::getline(lines, header);
  std::getline(lines, first);
  std::getline(lines, second);
  std::getline(lines, footer);
  EXPECT_EQ(header.rfind("ID  SEVERITY  STATUS  TENANT  ALERTS  DETECTED", 0), 0u) << header;
  EXPECT_NE(header.find("TITLE"), std::string::npos);
  EXPECT_NE(first.find("globex"), std::string::npos) << first;
  EXPECT_NE(second.find("SSH brute force: source.ip=10.0.0.5"), std::string::npos) << second;
  EXPECT_NE(second.find("2026-01-01T00:00:00Z"), std::string::npos) << second;
  EXPECT_EQ(footer, "2 of 2 cases shown (offset 0)");
}

// --tenant and --status are passed to the API as filters.
TEST_F(VigilctlTest, ListFilters) {
  RunResult r = run("--api " + api_ + " cases list --tenant acme --status new");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("acme"), std::string::npos);
  EXPECT_EQ(r.out.find("globex"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 of 1 cases shown"), std::string::npos) << r.out;
}

// --json prints the API response, which parses back to the same totals.
TEST_F(VigilctlTest, ListJson) {
  RunResult r = run("--api " + api_ + " cases list --limit 1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json body = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(body.is_discarded()) << r.out;
  EXPECT_EQ(body["total"], 2);
  EXPECT_EQ(body["limit"], 1);
  EXPECT_EQ(body["items"].size(), 1u);
}

// "cases show" prints the case fields, its alerts and its evidence with escapes made visible.
TEST_F(VigilctlTest, ShowPrintsCase) {
  nlohmann::json list = nlohmann::json::parse(run("--api " + api_ + " cases list --json").out);
  std::string id = std::to_string(list["items"][1]["id"].get<int64_t>());
  RunResult r = run("--api " + api_ + " cases show " + id);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("Case " + id + ": SSH brute force: source.ip=10.0.0.5\n", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("severity"), std::string::npos);
  EXPECT_NE(r.out.find("Alerts (2)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Evidence (4)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Failed password for root"), std::string::npos);
  EXPECT_NE(r.out.find("evil \\x1b[2J line"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos);
}

// "cases show --json" prints the case with alerts and evidence arrays.
TEST_F(VigilctlTest, ShowJson) {
  nlohmann::json list = nlohmann::json::parse(run("--api " + api_ + " cases list --json").out);
  std::string id = std::to_string(list["items"][1]["id"].get<int64_t>());
  RunResult r = run("--api " + api_ + " cases show " + id + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json body = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(body.is_discarded()) << r.out;
  EXPECT_EQ(body["alerts"].size(), 2u);
  EXPECT_EQ(body["evidence"].size(), 4u);
}

// An unknown case exits 1 and passes on the API's message.
TEST_F(VigilctlTest, ShowUnknownCase) {
  RunResult r = run("--api " + api_ + " cases show 999");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("HTTP 404: case 999 not found"), std::string::npos) << r.err;
}

// A refused connection names the URL and suggests --api and checking vigild.
TEST_F(VigilctlTest, ConnectionErrorNamesUrl) {
  std::string dead = "http://127.0.0.1:" + std::to_string(closedPort());
  RunResult r = run("--api " + dead + " cases list");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("GET " + dead + "/api/v1/cases"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--api"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("vigild is running"), std::string::npos) << r.err;
}

// VIGIL_API sets the URL, and --api also works after the subcommand.
TEST_F(VigilctlTest, ApiUrlFromEnvAndAfterSubcommand) {
  RunResult from_env = run("cases list", "env VIGIL_API=" + api_);
  EXPECT_EQ(from_env.exit_code, 0) << from_env.err;
  EXPECT_NE(from_env.out.find("2 of 2 cases shown"), std::string::npos) << from_env.out;

  RunResult after = run("cases list --api " + api_);
  EXPECT_EQ(after.exit_code, 0) << after.err;
  EXPECT_NE(after.out.find("2 of 2 cases shown"), std::string::npos) << after.out;
}

// A trailing slash on the API URL is dropped, and a URL without a scheme or with a path
// is rejected before any request, from --api and from VIGIL_API.
TEST_F(VigilctlTest, ApiUrlIsChecked) {
  RunResult slash = run("--api " + api_ + "/ cases list");
  EXPECT_EQ(slash.exit_code, 0) << slash.err;
  EXPECT_NE(slash.out.find("2 of 2 cases shown"), std::string::npos) << slash.out;
  RunResult env_slash = run("cases list", "env VIGIL_API=" + api_ + "//");
  EXPECT_EQ(env_slash.exit_code, 0) << env_slash.err;

  RunResult scheme = run("--api notaurl cases list");
  EXPECT_NE(scheme.exit_code, 0);
  EXPECT_NE(scheme.err.find("API URL 'notaurl' does not start with http:// or https://"),
            std::string::npos)
      << scheme.err;
  RunResult path = run("--api " + api_ + "/api cases list");
  EXPECT_NE(path.exit_code, 0);
  EXPECT_NE(path.err.find("has a path; give only the scheme, host and port"), std::string::npos)
      << path.err;
  RunResult env_bad = run("cases list", "env VIGIL_API=notaurl");
  EXPECT_EQ(env_bad.exit_code, 1);
  EXPECT_NE(env_bad.err.find("VIGIL_API: API URL 'notaurl' does not start"), std::string::npos)
      << env_bad.err;
  // --api replaces a bad VIGIL_API.
  RunResult replaced = run("--api " + api_ + " cases list", "env VIGIL_API=notaurl");
  EXPECT_EQ(replaced.exit_code, 0) << replaced.err;
}

// An unknown command or argument is named, with the help pointer and the usage status 2,
// instead of CLI11's "A subcommand is required" (status 106).
TEST_F(VigilctlTest, UnknownCommandIsNamed) {
  RunResult command = run("bogus");
  EXPECT_EQ(command.exit_code, 2) << command.err;
  EXPECT_NE(command.err.find("unknown command or argument 'bogus'; see vigilctl --help"),
            std::string::npos)
      << command.err;

  RunResult option = run("--api " + api_ + " cases list --bogus");
  EXPECT_EQ(option.exit_code, 2) << option.err;
  EXPECT_NE(option.err.find("unknown command or argument '--bogus'"), std::string::npos)
      << option.err;
}

// Bad arguments are rejected by vigilctl before any request is sent.
TEST_F(VigilctlTest, BadArgumentsAreRejected) {
  RunResult limit = run("--api " + api_ + " cases list --limit 0");
  EXPECT_NE(limit.exit_code, 0);
  EXPECT_NE(limit.err.find("--limit"), std::string::npos) << limit.err;

  RunResult id = run("--api " + api_ + " cases show abc");
  EXPECT_NE(id.exit_code, 0);
  EXPECT_NE(id.err.find("'abc' is not a valid case id; give an integer >= 1"), std::string::npos)
      << id.err;
  RunResult run_id = run("--api " + api_ + " runs show abc");
  EXPECT_NE(run_id.exit_code, 0);
  EXPECT_NE(run_id.err.find("'abc' is not a valid run id; give an integer >= 1"),
            std::string::npos)
      << run_id.err;
  RunResult version = run("--api " + api_ + " content show rules 0");
  EXPECT_NE(version.exit_code, 0);
  EXPECT_NE(version.err.find("'0' is not a valid version; give an integer >= 1"),
            std::string::npos)
      << version.err;

  RunResult zero = run("--api " + api_ + " cases show 0");
  EXPECT_NE(zero.exit_code, 0);
  EXPECT_NE(zero.err.find("'0' is not a valid case id"), std::string::npos) << zero.err;

  RunResult offset = run("--api " + api_ + " cases list --offset -1");
  EXPECT_NE(offset.exit_code, 0);
  EXPECT_EQ(offset.err.find("179769"), std::string::npos) << offset.err;

  RunResult none = run("--api " + api_);
  EXPECT_NE(none.exit_code, 0);
}

// A server-side rejection (bad status value) is printed with the API's reason.
TEST_F(VigilctlTest, ServerRejectionIsPrinted) {
  RunResult r = run("--api " + api_ + " cases list --status open");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("status=open is not valid"), std::string::npos) << r.err;
}

// The case work commands drive a case from creation to resolution, with human output.
TEST_F(VigilctlTest, CaseWorkCommands) {
  const std::string api = "--api " + api_ + " cases ";
  RunResult created = run(api + "create --title 'Lost laptop' --tenant acme --severity high "
                                "--tag device --json");
  ASSERT_EQ(created.exit_code, 0) << created.err;
  nlohmann::json c = nlohmann::json::parse(created.out);
  const std::string id = std::to_string(c["id"].get<int64_t>());
  EXPECT_EQ(c["tags"], nlohmann::json({"device"}));

  RunResult assign = run(api + "assign " + id + " bob");
  ASSERT_EQ(assign.exit_code, 0) << assign.err;
  EXPECT_NE(assign.out.find("assignee"), std::string::npos);
  EXPECT_NE(assign.out.find("bob"), std::string::npos) << assign.out;

  RunResult note = run(api + "note " + id + " 'asked @carol to wipe it'");
  ASSERT_EQ(note.exit_code, 0) << note.err;
  EXPECT_NE(note.out.find("mentions [\"carol\"]"), std::string::npos) << note.out;

  RunResult task = run(api + "task add " + id + " 'Wipe remotely' --assignee carol --json");
  ASSERT_EQ(task.exit_code, 0) << task.err;
  const std::string task_id = std::to_string(nlohmann::json::parse(task.out)["id"].get<int64_t>());
  RunResult done = run(api + "task update " + id + " " + task_id + " --status done");
  ASSERT_EQ(done.exit_code, 0) << done.err;
  EXPECT_NE(done.out.find("is done"), std::string::npos) << done.out;

  const std::string upload = dir_.file("photo.jpg");
  std::ofstream(upload, std::ios::binary) << std::string("\xff\xd8\xff\0jpeg", 8);
  RunResult added = run(api + "evidence add " + id + " " + upload + " --json");
  ASSERT_EQ(added.exit_code, 0) << added.err;
  nlohmann::json file = nlohmann::json::parse(added.out);
  EXPECT_EQ(file["name"], "photo.jpg");
  const std::string copy = dir_.file("copy.jpg");
  RunResult got = run(api + "evidence get " + id + " " + file["sha256"].get<std::string>() +
                      " -o " + copy);
  ASSERT_EQ(got.exit_code, 0) << got.err;
  std::ifstream in(copy, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(bytes, std::string("\xff\xd8\xff\0jpeg", 8));

  RunResult bad = run(api + "resolve " + id + " maybe");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("resolution=maybe is not valid"), std::string::npos) << bad.err;
  RunResult resolved = run(api + "resolve " + id + " true_positive --note 'device wiped'");
  ASSERT_EQ(resolved.exit_code, 0) << resolved.err;
  EXPECT_NE(resolved.out.find("true_positive"), std::string::npos) << resolved.out;

  RunResult timeline = run(api + "timeline " + id);
  ASSERT_EQ(timeline.exit_code, 0) << timeline.err;
  EXPECT_EQ(timeline.out.rfind("AT", 0), 0u);
  for (const char* action : {"created", "note_added", "task_updated", "evidence_added"}) {
    EXPECT_NE(timeline.out.find(action), std::string::npos) << action << "\n" << timeline.out;
  }

  RunResult show = run(api + "show " + id);
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_NE(show.out.find("Tasks (1)"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("Files (1)"), std::string::npos);
  EXPECT_NE(show.out.find("@carol"), std::string::npos);
}

// merge and metrics print summaries; merging into another tenant's case is refused.
TEST_F(VigilctlTest, MergeAndMetrics) {
  const std::string api = "--api " + api_ + " cases ";
  RunResult across = run(api + "merge 1 --into 2");
  EXPECT_EQ(across.exit_code, 1);
  EXPECT_NE(across.err.find("merge only within one tenant"), std::string::npos) << across.err;
  RunResult created = run(api + "create --title dup --tenant acme --json");
  ASSERT_EQ(created.exit_code, 0) << created.err;
  const std::string id = std::to_string(nlohmann::json::parse(created.out)["id"].get<int64_t>());
  RunResult merged = run(api + "merge " + id + " --into 1");
  ASSERT_EQ(merged.exit_code, 0) << merged.err;
  EXPECT_NE(merged.out.find("merged into case 1"), std::string::npos) << merged.out;

  RunResult metrics = run(api + "metrics --tenant acme");
  ASSERT_EQ(metrics.exit_code, 0) << metrics.err;
  EXPECT_EQ(metrics.out.rfind("TENANT", 0), 0u) << metrics.out;
  EXPECT_NE(metrics.out.find("acme"), std::string::npos);
  EXPECT_EQ(metrics.out.find("globex"), std::string::npos) << metrics.out;
  RunResult json = run(api + "metrics --json --from 2026-01-01T00:00:00Z");
  ASSERT_EQ(json.exit_code, 0) << json.err;
  EXPECT_EQ(nlohmann::json::parse(json.out)["from"], "2026-01-01T00:00:00Z");
}

}  // namespace
}  // namespace vigil::mgmt
