// The alert view a playbook worker hands to the VM, compared with the JSON object it
// replaced: every path a playbook can read must give the same value through both, and the
// view's JSON text must be the object's text byte for byte. The alerts come from the
// shared corpus (edge-case log lines and JSON events) and from a seeded generator.
#include "mgmt/internal/alert_view.h"

#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "mgmt/internal/alert_json.h"
#include "mgmt_test_util.h"
#include "playbook_vm/builder.h"
#include "playbook_vm/compiler/alert_host.h"
#include "playbook_vm/compiler/compiler.h"
#include "playbook_vm/vm.h"

namespace vigil::mgmt {
namespace {

namespace pb = playbook_vm;
namespace pbc = playbook_vm::compiler;
using json = nlohmann::json;

// Runs `probe` inside a VM host call, where it can create strings and lists.
void withHostCall(const std::function<void(pb::HostCall&)>& probe) {
  pb::HostRegistry host;
  ASSERT_TRUE(host.add("probe", 0, [&](pb::HostCall& call, pb::Value&) {
                    probe(call);
                    return absl::OkStatus();
                  })
                  .ok());
  pb::ProgramBuilder builder("probe");
  const uint32_t function = builder.importHost("probe", 0);
  builder.emitABC(pb::Opcode::kCall, 0, function, 0);
  builder.emitABC(pb::Opcode::kReturn, 0, 0, 0);
  absl::StatusOr<std::vector<uint8_t>> module = builder.finish();
  ASSERT_TRUE(module.ok()) << module.status();
  absl::StatusOr<std::unique_ptr<pb::Program>> program = pb::loadProgram(*module, host);
  ASSERT_TRUE(program.ok()) << program.status();
  pb::Vm vm;
  pb::RunResult result = vm.run(**program, host, pb::Budget{}, nullptr);
  EXPECT_EQ(result.status, pb::RunStatus::kReturned) << result.message;
}

// A value with its type: valueToJson keeps integers, reals, strings and lists apart.
std::string describe(const pb::Value& value) {
  return std::string(pb::valueTypeName(value.type())) + " " +
         pbc::valueToJson(value).dump(-1, ' ', false, json::error_handler_t::replace);
}

// The paths worth reading in `alert`: every member, every group-by field through "group."
// and at the top level, and paths that must read null.
std::vector<std::string> pathsOf(const correlate::Alert& alert) {
  std::vector<std::string> paths = {
      "id",       "rule_id",   "rule_title",  "rules_version", "level",        "severity",
      "tenant",   "tags",      "first_event", "last_event",    "detected",     "event_count",
      "evidence", "indicator_hits", "metric", "inbox_id",      "group",        "events",
      "",         ".",         "group.",      "group..",       "id.x",         "tags.0",
      "events.0", "group.x.y", "missing",     "missing.x",     "severity.high"};
  for (const auto& [field, value] : alert.group) {
    paths.push_back(field);
    paths.push_back("group." + field);
    paths.push_back("group." + field + ".x");
    paths.push_back(field + ".x");
    paths.push_back(value);
  }
  return paths;
}

// Compares every path of `alert` through the view and through refreshAlertJson()'s object.
void expectSameAsJson(const correlate::Alert& alert, int64_t inbox_id, internal::AlertView& view,
                      std::string& text) {
  json object;
  internal::refreshAlertJson(alert, inbox_id, object);
  view.reset(alert, inbox_id);
  view.writeJson(text);
  std::string expected_text;
  internal::dumpJsonTo(object, expected_text);
  EXPECT_EQ(text, expected_text);

  const pbc::JsonAlertSource reference(object);
  withHostCall([&](pb::HostCall& call) {
    for (const std::string& path : pathsOf(alert)) {
      SCOPED_TRACE("path " + path);
      pb::Value expected;
      pb::Value actual;
      ASSERT_TRUE(reference.field(path, call, expected));
      ASSERT_TRUE(view.field(path, call, actual));
      EXPECT_EQ(describe(actual), describe(expected));
    }
    ASSERT_EQ(view.eventCount(), reference.eventCount());
    for (size_t i = 0; i < view.eventCount(); ++i) {
      for (const char* path : {"raw", "raw.x", "raw.", "", "x", "events"}) {
        SCOPED_TRACE("event " + std::to_string(i) + " path " + path);
        pb::Value expected;
        pb::Value actual;
        ASSERT_TRUE(reference.eventField(i, path, call, expected));
        ASSERT_TRUE(view.eventField(i, path, call, actual));
        EXPECT_EQ(describe(actual), describe(expected));
      }
    }
  });
}

std::vector<std::string> readLines(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// One alert per file of the edge-case corpus. Log lines become evidence, tags and group-by
// values; each JSON event's scalar members become group-by fields named as in the event.
std::vector<correlate::Alert> corpusAlerts() {
  std::vector<correlate::Alert> alerts;
  const std::filesystem::path dir = std::string(VIGIL_SHARED_DIR) + "/corpus/edge";
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  for (const std::filesystem::path& file : files) {
    std::vector<std::string> lines = readLines(file);
    if (lines.empty()) continue;
    correlate::Alert alert = testing::makeAlert(file.stem().string(), "medium", "corpus", {},
                                                testing::kT0);
    alert.rule_title = lines.front();
    alert.evidence.assign(lines.begin(),
                          lines.begin() + std::min(lines.size(), correlate::Alert::kMaxEvidence));
    alert.tags.assign(lines.begin(), lines.begin() + std::min<size_t>(lines.size(), 3));
    alert.event_count = lines.size();
    for (const std::string& line : lines) {
      const json event = json::parse(line, nullptr, false);
      if (!event.is_object()) {
        alert.group.emplace_back("line", line);
        continue;
      }
      for (const auto& [key, value] : event.items()) {
        if (value.is_primitive()) {
          alert.group.emplace_back(key, value.is_string() ? value.get<std::string>() : value.dump());
        }
      }
    }
    alerts.push_back(std::move(alert));
  }
  return alerts;
}

TEST(AlertViewTest, CorpusAlertsReadAsJson) {
  const std::vector<correlate::Alert> alerts = corpusAlerts();
  ASSERT_GE(alerts.size(), 10u);
  internal::AlertView view;
  std::string text;
  int64_t inbox_id = 0;
  for (const correlate::Alert& alert : alerts) {
    SCOPED_TRACE(alert.rule_id);
    expectSameAsJson(alert, inbox_id, view, text);
    inbox_id = inbox_id == 0 ? 17 : 0;
  }
}

// A group-by field name that is not valid UTF-8 reaches the VM replaced, as in the run's
// JSON text. The JSON object path cannot be compared here: nlohmann's dump() raises on it.
TEST(AlertViewTest, InvalidFieldNameReadsReplaced) {
  correlate::Alert alert =
      testing::makeAlert("r1", "high", "acme", {{"\xff", "v"}}, testing::kT0);
  internal::AlertView view;
  view.reset(alert, 0);
  std::string text;
  view.writeJson(text);
  EXPECT_NE(text.find("\"group\":{\"\xef\xbf\xbd\":\"v\"}"), std::string::npos) << text;
  withHostCall([&](pb::HostCall& call) {
    pb::Value group;
    ASSERT_TRUE(view.field("group", call, group));
    EXPECT_EQ(describe(group), "string \"{\\\"\xef\xbf\xbd\\\":\\\"v\\\"}\"");
    pb::Value value;
    ASSERT_TRUE(view.field("\xff", call, value));
    EXPECT_EQ(describe(value), "string \"v\"");
  });
}

// Alerts whose group-by fields are named like members, repeated, dotted or empty, with
// texts of invalid UTF-8, control characters and very large numbers, in one reused view.
TEST(AlertViewTest, GeneratedAlertsReadAsJson) {
  const std::vector<std::string> names = {
      "src_ip", "host",  "id",      "group", "events", "metric", "inbox_id", "severity",
      "a.b",    "a",     "",        "tags",  "zz",     "user",   "x y",      "group.src_ip"};
  const std::vector<std::string> texts = {
      "203.0.113.9", "", "caf\xc3\xa9", "bad \xff\xfe utf-8", std::string("nul \x00 x", 7),
      "quote \" backslash \\ tab \t", "\xe2\x82", "\xed\xa0\x80 surrogate", "x.y"};
  std::mt19937 random(20261205);
  auto pick = [&](const std::vector<std::string>& from) {
    return from[std::uniform_int_distribution<size_t>(0, from.size() - 1)(random)];
  };
  auto count = [&](size_t max) { return std::uniform_int_distribution<size_t>(0, max)(random); };
  internal::AlertView view;
  std::string text;
  for (int i = 0; i < 300; ++i) {
    SCOPED_TRACE("alert " + std::to_string(i));
    correlate::Alert alert = testing::makeAlert("r" + std::to_string(i % 7), pick(texts),
                                                pick(texts), {}, testing::kT0 + i);
    alert.rule_title = pick(texts);
    alert.id = pick(texts);
    for (size_t n = count(6); n > 0; --n) alert.group.emplace_back(pick(names), pick(texts));
    alert.tags.clear();
    for (size_t n = count(3); n > 0; --n) alert.tags.push_back(pick(texts));
    alert.evidence.clear();
    for (size_t n = count(4); n > 0; --n) alert.evidence.push_back(pick(texts));
    alert.indicator_hits.clear();
    for (size_t n = count(2); n > 0; --n) alert.indicator_hits.push_back(pick(texts));
    const double metrics[] = {std::numeric_limits<double>::quiet_NaN(), 12.5, 1e21, -0.0,
                              std::numeric_limits<double>::infinity()};
    alert.metric = metrics[count(4)];
    alert.rules_version = i % 3 == 0 ? std::numeric_limits<uint64_t>::max() : i;
    alert.event_count = i % 5 == 0 ? uint64_t{1} << 63 : i;
    alert.first_event_ns = i % 4 == 0 ? 0 : alert.first_event_ns + 123456789;
    expectSameAsJson(alert, i % 3 == 0 ? 0 : i, view, text);
  }
}

// The view reads through the alert host functions the way a compiled playbook does, and a
// run without a view or JSON object fails with the usual error.
TEST(AlertViewTest, HostFunctionsPreferView) {
  correlate::Alert alert =
      testing::makeAlert("r1", "high", "acme", {{"src_ip", "203.0.113.9"}}, testing::kT0);
  internal::AlertView view;
  view.reset(alert, 5);
  pbc::AlertRunContext context;
  context.alert_source = &view;
  json other = {{"src_ip", "198.51.100.1"}};
  context.alert = &other;

  pb::HostRegistry host;
  ASSERT_TRUE(pbc::registerAlertHost(host).ok());
  pb::ProgramBuilder builder("read");
  const uint32_t field = builder.importHost(pbc::kHostAlertField, 1);
  builder.emitABx(pb::Opcode::kLoadK, 1, builder.addString("group.src_ip"));
  builder.emitABC(pb::Opcode::kCall, 0, field, 1);
  builder.emitABC(pb::Opcode::kReturn, 0, 0, 0);
  absl::StatusOr<std::vector<uint8_t>> module = builder.finish();
  ASSERT_TRUE(module.ok()) << module.status();
  absl::StatusOr<std::unique_ptr<pb::Program>> program = pb::loadProgram(*module, host);
  ASSERT_TRUE(program.ok()) << program.status();

  pb::Vm vm;
  pb::RunResult result = vm.run(**program, host, pb::Budget{}, &context);
  ASSERT_EQ(result.status, pb::RunStatus::kReturned) << result.message;
  EXPECT_EQ(pb::valueToString(result.value), "\"203.0.113.9\"");

  context.alert_source = nullptr;
  result = vm.run(**program, host, pb::Budget{}, &context);
  ASSERT_EQ(result.status, pb::RunStatus::kReturned) << result.message;
  EXPECT_EQ(pb::valueToString(result.value), "null");

  context.alert = nullptr;
  result = vm.run(**program, host, pb::Budget{}, &context);
  EXPECT_EQ(result.status, pb::RunStatus::kFailed);
  EXPECT_NE(result.message.find("no AlertRunContext"), std::string::npos) << result.message;
}

}  // namespace
}  // namespace vigil::mgmt
