// The alert JSON a playbook run reads, refreshed in an object a worker keeps, and its text
// for the run journal written without nlohmann's serializer.
#include "mgmt/internal/alert_json.h"

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "common/time.h"
#include "gtest/gtest.h"
#include "mgmt/internal/stored_alert.h"
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

// correlate::alertToJson() as it was written before it built its text by hand: a
// nlohmann object of the alert's fields, dumped.
std::string referenceAlertJson(const correlate::Alert& alert) {
  json group = json::object();
  for (const auto& [field, value] : alert.group) group[field] = value;
  json j = {
      {"id", alert.id},
      {"rule_id", alert.rule_id},
      {"rule_title", alert.rule_title},
      {"rules_version", alert.rules_version},
      {"level", alert.level},
      {"tenant", alert.tenant},
      {"group", group},
      {"tags", alert.tags},
      {"first_event", formatRfc3339(alert.first_event_ns)},
      {"last_event", formatRfc3339(alert.last_event_ns)},
      {"detected", formatRfc3339(alert.detect_ns)},
      {"event_count", alert.event_count},
      {"evidence", alert.evidence},
      {"indicator_hits", alert.indicator_hits},
  };
  if (!std::isnan(alert.metric)) j["metric"] = alert.metric;
  return referenceDump(j);
}

// internal::encodeStoredAlert() as it was written before, the format of inbox rows
// that databases of earlier versions hold.
std::string referenceStoredAlert(const correlate::Alert& alert) {
  json group = json::array();
  for (const auto& [field, value] : alert.group) group.push_back({field, value});
  json j = {
      {"id", alert.id},
      {"rule_id", alert.rule_id},
      {"rule_title", alert.rule_title},
      {"rules_version", alert.rules_version},
      {"level", alert.level},
      {"tenant", alert.tenant},
      {"group", group},
      {"tags", alert.tags},
      {"first_event_ns", alert.first_event_ns},
      {"last_event_ns", alert.last_event_ns},
      {"detect_ns", alert.detect_ns},
      {"event_count", alert.event_count},
      {"evidence", alert.evidence},
      {"indicator_hits", alert.indicator_hits},
  };
  if (!std::isnan(alert.metric)) j["metric"] = alert.metric;
  if (alert.receive_ns != 0) j["receive_ns"] = alert.receive_ns;
  return referenceDump(j);
}

// A text of up to 12 bytes drawn mostly from bytes that need care in JSON: quotes,
// backslashes, control characters, pieces of multibyte UTF-8 and invalid bytes.
std::string randomText(std::mt19937_64& rng) {
  static const std::string_view kPieces[] = {
      "a", "Z", " ", "\"", "\\", "/", "\n", "\t", std::string_view("\0", 1), "\x01", "\x1f",
      "\x7f", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xc3", "\xe2\x82", "\xff",
      "\x80", "\xed\xa0\x80", "\xc0\xaf", "\xf4\x90\x80\x80", "src_ip", "id"};
  std::string out;
  const size_t pieces = rng() % 7;
  for (size_t i = 0; i < pieces; ++i) out += kPieces[rng() % std::size(kPieces)];
  return out;
}

std::vector<std::string> randomTexts(std::mt19937_64& rng) {
  std::vector<std::string> out(rng() % 4);
  for (std::string& text : out) text = randomText(rng);
  return out;
}

correlate::Alert randomAlert(std::mt19937_64& rng) {
  correlate::Alert alert;
  alert.id = randomText(rng);
  alert.rule_id = randomText(rng);
  alert.rule_title = randomText(rng);
  alert.rules_version = rng() % 3 == 0 ? rng() : rng() % 100;
  alert.level = randomText(rng);
  alert.tenant = randomText(rng);
  const size_t fields = rng() % 4;
  for (size_t i = 0; i < fields; ++i) {
    // Few names, so a name often occurs twice.
    alert.group.emplace_back(rng() % 2 == 0 ? "user" : randomText(rng), randomText(rng));
  }
  alert.tags = randomTexts(rng);
  alert.first_event_ns = static_cast<int64_t>(rng() % 4'000'000'000'000'000'000ULL);
  alert.last_event_ns = alert.first_event_ns + static_cast<int64_t>(rng() % 1'000'000'000'000);
  alert.detect_ns = static_cast<int64_t>(rng() >> 2);
  alert.receive_ns = rng() % 2 == 0 ? 0 : -static_cast<int64_t>(rng() % 1000);
  alert.event_count = rng();
  static const double kMetrics[] = {std::numeric_limits<double>::quiet_NaN(), 0.0, -0.0, 3.0,
                                    0.1, 1e21, -2.5e-7, 12345678.125};
  alert.metric = kMetrics[rng() % std::size(kMetrics)];
  alert.evidence = randomTexts(rng);
  alert.indicator_hits = randomTexts(rng);
  return alert;
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

// The alert text written by hand is the one the nlohmann object wrote, byte for byte:
// keys sorted, the last value of a repeated group-by field, invalid UTF-8 replaced.
TEST(AlertTextTest, AlertToJsonMatchesObjectDump) {
  for (const auto& [alert, inbox_id] : alertSequence()) {
    SCOPED_TRACE(alert.id);
    EXPECT_EQ(correlate::alertToJson(alert), referenceAlertJson(alert));
  }
  std::mt19937_64 rng(20261206);
  for (int i = 0; i < 3000; ++i) {
    const correlate::Alert alert = randomAlert(rng);
    ASSERT_EQ(correlate::alertToJson(alert), referenceAlertJson(alert)) << "alert " << i;
  }
}

// Inbox rows are written as before, and rows written before read back the same.
TEST(AlertTextTest, StoredAlertMatchesObjectDumpAndReadsBack) {
  std::mt19937_64 rng(4711);
  for (int i = 0; i < 3000; ++i) {
    const correlate::Alert alert = randomAlert(rng);
    const std::string text = internal::encodeStoredAlert(alert);
    ASSERT_EQ(text, referenceStoredAlert(alert)) << "alert " << i;
    absl::StatusOr<correlate::Alert> back = internal::decodeStoredAlert(text);
    ASSERT_TRUE(back.ok()) << "alert " << i << ": " << back.status();
    // What a reader gets is the alert with its invalid UTF-8 replaced. (Compared as JSON:
    // a replaced group-by name can sort to another place among the names.)
    EXPECT_EQ(json::parse(correlate::alertToJson(*back)),
              json::parse(correlate::alertToJson(alert)))
        << "alert " << i;
    EXPECT_EQ(back->group.size(), alert.group.size());
    EXPECT_EQ(back->receive_ns, alert.receive_ns);
    EXPECT_EQ(back->detect_ns, alert.detect_ns);
    EXPECT_EQ(back->event_count, alert.event_count);
    EXPECT_EQ(back->rules_version, alert.rules_version);
    if (std::isnan(alert.metric)) {
      EXPECT_TRUE(std::isnan(back->metric));
    } else {
      EXPECT_EQ(back->metric, alert.metric);
    }
  }
}

TEST(AlertTextTest, StoredAlertErrorsNameTheField) {
  correlate::Alert alert = testing::makeAlert("r1", "high", "acme", {{"src_ip", "192.0.2.1"}},
                                              testing::kT0);
  json j = json::parse(internal::encodeStoredAlert(alert));
  j["event_count"] = "five";
  absl::Status wrong = internal::decodeStoredAlert(j.dump()).status();
  EXPECT_TRUE(absl::IsDataLoss(wrong)) << wrong;
  EXPECT_NE(wrong.message().find("\"event_count\""), std::string_view::npos) << wrong;

  j = json::parse(internal::encodeStoredAlert(alert));
  j.erase("group");
  wrong = internal::decodeStoredAlert(j.dump()).status();
  EXPECT_NE(wrong.message().find("\"group\""), std::string_view::npos) << wrong;

  j = json::parse(internal::encodeStoredAlert(alert));
  j["group"] = json::array({json::array({"only one"})});
  wrong = internal::decodeStoredAlert(j.dump()).status();
  EXPECT_NE(wrong.message().find("\"group\""), std::string_view::npos) << wrong;

  // A metric written as an integer still reads as a number.
  j = json::parse(internal::encodeStoredAlert(alert));
  j["metric"] = 7;
  absl::StatusOr<correlate::Alert> back = internal::decodeStoredAlert(j.dump());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->metric, 7.0);

  EXPECT_TRUE(absl::IsDataLoss(internal::decodeStoredAlert("{\"id\": ").status()));
}

}  // namespace
}  // namespace vigil::mgmt
