// Tenant-owned indicators: the builder keeps one copy per tenant with its own metadata,
// and the matcher reports to an event only the copies of its tenant and of every tenant.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "intel/builder.h"
#include "intel/indicator_set.h"
#include "intel/matcher.h"
#include "intel/snapshot.h"

namespace vigil::intel {
namespace {

constexpr size_t kArenaBytes = 8192;

// One list per tenant ("" for every tenant), loaded in order.
struct TenantList {
  std::string tenant;
  std::string text;
};

std::shared_ptr<const IndicatorSet> buildTenantSet(const std::vector<TenantList>& lists) {
  IndicatorSetBuilder builder;
  for (const TenantList& list : lists) {
    EXPECT_TRUE(builder.setTenant(list.tenant).ok()) << list.tenant;
    const std::string name = list.tenant.empty() ? "global" : list.tenant + "-list";
    absl::StatusOr<LoadReport> report = builder.addListText(name, list.text, name);
    EXPECT_TRUE(report.ok()) << report.status();
    EXPECT_EQ(report->rejected, 0u);
  }
  absl::StatusOr<std::shared_ptr<const IndicatorSet>> set = builder.build();
  EXPECT_TRUE(set.ok()) << set.status();
  return *set;
}

// Matches `message` (and `src`, when set) as an event of `tenant` and returns the
// "text@tenant" of each hit, in order.
std::vector<std::string> hitsFor(const IndicatorSet& set, std::string_view tenant,
                                 std::string_view message, const char* src = nullptr) {
  Scratch scratch(set);
  Event event(kArenaBytes);
  event.raw = event.arena.copy(message);
  event.message = event.raw;
  event.tenant = event.arena.copy(tenant);
  if (src != nullptr) event.src_ip = parseIp(src);
  matchEvent(set, scratch, event);
  std::vector<std::string> out;
  for (size_t i = 0; i < event.hit_count; ++i) {
    const IndicatorHit& hit = event.hits[i];
    out.push_back(std::string(hit.indicator) + "@" + std::string(set.tenant(hit.indicator_id)));
  }
  return out;
}

using Hits = std::vector<std::string>;

TEST(TenantIntel, OtherTenantsIndicatorDoesNotMatch) {
  auto set = buildTenantSet({{"acme", "evil.example\n198.51.100.7\nhttp://bad.example/x\n"}});
  const std::string line = "GET http://bad.example/x from evil.example";
  EXPECT_EQ(hitsFor(*set, "globex", line, "198.51.100.7"), Hits{});
  EXPECT_EQ(hitsFor(*set, "", line, "198.51.100.7"), Hits{});
  EXPECT_EQ(hitsFor(*set, "acme", line, "198.51.100.7"),
            (Hits{"198.51.100.7@acme", "evil.example@acme", "http://bad.example/x@acme"}));
}

TEST(TenantIntel, GlobalIndicatorMatchesEveryTenant) {
  auto set = buildTenantSet({{"", "evil.example\n"}, {"acme", "other.example\n"}});
  for (const char* tenant : {"acme", "globex", "default", ""}) {
    EXPECT_EQ(hitsFor(*set, tenant, "query evil.example"), Hits{"evil.example@"}) << tenant;
  }
  EXPECT_TRUE(set->tenantScoped());
}

// The same value for every tenant and two tenants: each tenant sees the global copy and
// its own, never the other tenant's, and each copy keeps its own metadata.
TEST(TenantIntel, SharedValueReportsOwnAndGlobalCopy) {
  auto set = buildTenantSet({{"acme", "evil.example\n0123456789abcdef0123456789abcdef\n"},
                             {"globex", "evil.example\n"},
                             {"", "evil.example\n"}});
  const std::string line = "evil.example 0123456789abcdef0123456789abcdef";
  EXPECT_EQ(hitsFor(*set, "acme", line),
            (Hits{"evil.example@", "evil.example@acme",
                  "0123456789abcdef0123456789abcdef@acme"}));
  EXPECT_EQ(hitsFor(*set, "globex", line), (Hits{"evil.example@", "evil.example@globex"}));
  EXPECT_EQ(hitsFor(*set, "initech", line), Hits{"evil.example@"});

  // Three copies with their own lists; the global copy heads the group.
  std::optional<uint32_t> head = set->lookupDomain("evil.example");
  ASSERT_TRUE(head.has_value());
  EXPECT_EQ(set->tenant(*head), "");
  EXPECT_EQ(set->lists(*head), "global");
  ASSERT_TRUE(set->hasNextCopy(*head));
  std::vector<std::string> owners;
  for (uint32_t id = *head + 1;; ++id) {
    owners.push_back(set->indicator(id).tenant + ":" + std::string(set->lists(id)));
    if (!set->hasNextCopy(id)) break;
  }
  EXPECT_EQ(owners, (std::vector<std::string>{"acme:acme-list", "globex:globex-list"}));
  EXPECT_EQ(set->size(), 4u);
}

// Another tenant's exact address does not hide a prefix the event's tenant sees.
TEST(TenantIntel, AddressFallsBackToVisiblePrefix) {
  auto set = buildTenantSet({{"acme", "198.51.100.7\n"}, {"", "198.51.100.0/24\n"}});
  EXPECT_EQ(hitsFor(*set, "globex", "x", "198.51.100.7"), Hits{"198.51.100.0/24@"});
  EXPECT_EQ(hitsFor(*set, "acme", "x", "198.51.100.7"), Hits{"198.51.100.7@acme"});
}

TEST(TenantIntel, HyperscanHitsFilteredByTenant) {
  auto set = buildTenantSet({{"acme", "http://bad.example/a\n"},
                             {"globex", "http://bad.example/a\nhttp://worse.example/b\n"}});
  const std::string line = "fetch http://bad.example/a then http://worse.example/b";
  EXPECT_EQ(hitsFor(*set, "acme", line), Hits{"http://bad.example/a@acme"});
  EXPECT_EQ(hitsFor(*set, "globex", line),
            (Hits{"http://bad.example/a@globex", "http://worse.example/b@globex"}));
  EXPECT_EQ(set->stats().pattern_count, 2u);  // one pattern per distinct text
}

TEST(TenantIntel, DuplicateWithinTenantMerges) {
  IndicatorSetBuilder builder;
  ASSERT_TRUE(builder.setTenant("acme").ok());
  ASSERT_TRUE(builder.addListText("one", "evil.example\n", "one").ok());
  absl::StatusOr<LoadReport> second = builder.addListText("two", "evil.example\n", "two");
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->duplicates, 1u);
  auto set = builder.build();
  ASSERT_TRUE(set.ok());
  ASSERT_EQ((*set)->size(), 1u);
  EXPECT_EQ((*set)->lists(0), "one,two");
  EXPECT_EQ((*set)->tenant(0), "acme");
}

TEST(TenantIntel, SetTenantRejectsBadName) {
  IndicatorSetBuilder builder;
  absl::Status bad = builder.setTenant("acme corp");
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("'acme corp'"), std::string_view::npos) << bad;
  EXPECT_TRUE(builder.setTenant("").ok());
}

TEST(TenantIntel, UnscopedSetHasNoCopies) {
  auto set = buildTenantSet({{"", "evil.example\n198.51.100.7\n"}});
  EXPECT_FALSE(set->tenantScoped());
  for (uint32_t id = 0; id < set->size(); ++id) EXPECT_FALSE(set->hasNextCopy(id));
}

// The snapshot's delta part filters by tenant too, and each tenant's copy counts its own
// sightings.
TEST(TenantIntel, SnapshotSightingsPerTenant) {
  SnapshotStore store(1);
  store.publish(buildTenantSet({{"", "base.example\n"}}));
  ASSERT_TRUE(store.publishDelta(buildTenantSet({{"acme", "evil.example\n"},
                                                 {"globex", "evil.example\n"}}))
                  .has_value());
  const Snapshot* snapshot = store.acquire(0);
  ASSERT_NE(snapshot, nullptr);
  for (const char* tenant : {"acme", "acme", "globex"}) {
    Event event(kArenaBytes);
    event.raw = event.arena.copy("evil.example base.example");
    event.message = event.raw;
    event.tenant = tenant;
    EXPECT_EQ(snapshot->match(0, event, 1000), 2u) << tenant;
  }
  store.release(0);
  std::map<std::string, uint64_t> hits;
  std::shared_ptr<const Snapshot> current = store.current();
  for (uint32_t id = 0; id < current->size(); ++id) {
    const Indicator indicator = current->indicator(id);
    hits[indicator.text + "@" + indicator.tenant] = current->hitCount(id);
  }
  EXPECT_EQ(hits["base.example@"], 3u);
  EXPECT_EQ(hits["evil.example@acme"], 2u);
  EXPECT_EQ(hits["evil.example@globex"], 1u);
}

}  // namespace
}  // namespace vigil::intel
