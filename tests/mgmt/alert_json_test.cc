// The alert JSON a playbook run reads, refreshed in an object a worker keeps, and its text
// for the run journal written without nlohmann's serializer.
#include "mgmt/internal/alert_json.h"

#include <limits>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "mgmt_test_util.h"

namespace vigil::mgmt {
namespace {

using json = nlohmann::json;

std::string referenceDump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// Alerts that differ in every way refreshAlertJson() has to undo. Group-by fields are
// added, dropped, repeated or named like a top-level field. Evidence and tags change
// length, a metric and an inbox id come and go, and texts carry invalid UTF-8 and control
// characters.
std::vector<std::pair<correlate::Alert, int64_t>> alertSequence() {
  std::vector<std::pair<correlate::Alert, int64_t>> out;
  correlate::Alert a = testing::makeAlert("r1", "high", "acme",
                                          {{"src_ip", "203.0.113.9"}, {"host", "ws-7"}},
                                          testing::kT0);
  a.evidence = {"line one", "line \"two\"\n\ttabbed"};
  out.emplace_back(a, 0);

  correlate::Alert b = testing::makeAlert(
      "r2", "low", "globex",
      {{"user", "bob"}, {"id", "shadowed"}, {"user", "alice"}, {"inbox_id", "from group"}},
      testing::kT0 + 1);
  b.metric = 12.5;
  b.tags = {};
  b.indicator_hits = {"203.0.113.9"};
  out.emplace_back(b, 0);

  correlate::Alert c = b;
  c.metric = std::numeric_limits<double>::quiet_NaN();
  c.group = {{"metric", "from group"}, {"group", "x"}, {"events", "y"}, {"inbox_id", "z"}};
  c.evidence = {"bad \xff utf-8", std::string("nul \x01 and \x1f", 12)};
  c.rule_title = "caf\xc3\xa9 \xe2\x82\xac";
  out.emplace_back(c, 42);

  correlate::Alert d = a;
  d.group = {};
  d.evidence = {};
  d.tenant = "t\x80";
  d.metric = 1e21;
  out.emplace_back(d, 7);

  out.emplace_back(a, 0);
  return out;
}

// A reused object ends up equal to a new one, alert after alert.
TEST(AlertJsonTest, ReusedObjectMatchesFreshOne) {
  json reused;
  for (const auto& [alert, inbox_id] : alertSequence()) {
    SCOPED_TRACE(alert.id);
    json fresh;
    internal::refreshAlertJson(alert, inbox_id, fresh);
    internal::refreshAlertJson(alert, inbox_id, reused);
    EXPECT_EQ(reused, fresh);
    EXPECT_EQ(referenceDump(reused), referenceDump(fresh));
  }
}

// Every field of correlate::alertToJson is there with its value, plus the fields playbooks
// add.
TEST(AlertJsonTest, HoldsAlertFieldsAndPlaybookFields) {
  json reused;
  for (const auto& [alert, inbox_id] : alertSequence()) {
    SCOPED_TRACE(alert.id);
    internal::refreshAlertJson(alert, inbox_id, reused);
    const json expected = json::parse(correlate::alertToJson(alert));
    for (const auto& [key, value] : expected.items()) {
      EXPECT_EQ(reused[key], value) << key;
    }
    EXPECT_EQ(reused["severity"], expected["level"]);
    ASSERT_TRUE(reused["events"].is_array());
    ASSERT_EQ(reused["events"].size(), alert.evidence.size());
    for (size_t i = 0; i < alert.evidence.size(); ++i) {
      EXPECT_EQ(reused["events"][i], json({{"raw", expected["evidence"][i]}}));
    }
    if (inbox_id != 0) {
      EXPECT_EQ(reused["inbox_id"], inbox_id);
    }
  }
}

// Group-by fields: the last entry of a field wins, and a field named like a top-level one
// stays under "group" only.
TEST(AlertJsonTest, GroupFieldsAtTopLevel) {
  auto alerts = alertSequence();
  json j;
  internal::refreshAlertJson(alerts[0].first, 0, j);
  EXPECT_EQ(j["src_ip"], "203.0.113.9");
  EXPECT_EQ(j["group"]["host"], "ws-7");

  internal::refreshAlertJson(alerts[1].first, 0, j);
  EXPECT_FALSE(j.contains("src_ip"));
  EXPECT_EQ(j["user"], "alice");
  EXPECT_EQ(j["group"]["user"], "alice");
  EXPECT_EQ(j["id"], alerts[1].first.id);
  EXPECT_EQ(j["group"]["id"], "shadowed");
  EXPECT_EQ(j["inbox_id"], "from group");
  EXPECT_EQ(j["metric"], 12.5);

  internal::refreshAlertJson(alerts[2].first, 42, j);
  EXPECT_FALSE(j.contains("user"));
  EXPECT_EQ(j["metric"], "from group");
  EXPECT_EQ(j["inbox_id"], 42);
  EXPECT_TRUE(j["group"].is_object());
  EXPECT_TRUE(j["events"].is_array());
  EXPECT_EQ(j["evidence"][0], "bad \xef\xbf\xbd utf-8");
}

// The text matches nlohmann's dump byte for byte, for alerts and for JSON of every type.
TEST(AlertJsonTest, DumpMatchesNlohmann) {
  std::string text;
  json reused;
  for (const auto& [alert, inbox_id] : alertSequence()) {
    SCOPED_TRACE(alert.id);
    internal::refreshAlertJson(alert, inbox_id, reused);
    internal::dumpJsonTo(reused, text);
    EXPECT_EQ(text, referenceDump(reused));
  }
  const json values[] = {
      json::object(),
      json::array(),
      json(nullptr),
      json(true),
      json(-17),
      json(uint64_t{18446744073709551615u}),
      json(0.1),
      json(1e300),
      json(-0.0),
      json(3.0),
      json(std::numeric_limits<double>::infinity()),
      json("quote \" backslash \\ slash / del \x7f"),
      json(std::string("controls \x00\x01\x08\x0c\x1b", 15)),
      json("bad \xc3\x28 and \xed\xa0\x80 surrogate"),
      json({{"k\xff", 1}, {"a", {1, "two", {{"x", nullptr}}}}}),
  };
  for (const json& value : values) {
    internal::dumpJsonTo(value, text);
    EXPECT_EQ(text, referenceDump(value));
  }
}

}  // namespace
}  // namespace vigil::mgmt
