// Differential test: the Hyperscan matcher against a naive matcher written here (linear
// scans over every indicator, substring search with the same boundary rules, std::regex
// for the regexes) on seeded random indicator sets and events. Both must report the same
// hits, and the URL, email and regex hits in the same order.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <functional>
#include <memory>
#include <random>
#include <regex>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "intel/builder.h"
#include "intel/indicator_set.h"
#include "intel/matcher.h"

namespace vigil::intel {
namespace {

constexpr int kSets = 25;
constexpr int kEventsPerSet = 400;

using Hit =
    std::tuple<std::string, IndicatorType, std::string, std::string>;  // text, type, field, list

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool labelByte(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-'; }
bool localPartByte(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '%' ||
         c == '+' || c == '-';
}
bool hexByte(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }

// The boundary rules restated from the module's contract, independent of its code.
bool naiveBoundary(const std::string& text, size_t pos, size_t len, IndicatorType type) {
  char before = pos == 0 ? '\0' : text[pos - 1];
  size_t end = pos + len;
  char after = end < text.size() ? text[end] : '\0';
  char after2 = end + 1 < text.size() ? text[end + 1] : '\0';
  switch (type) {
    case IndicatorType::kDomain:
      if (pos > 0 && labelByte(before)) return false;
      if (end < text.size() && labelByte(after)) return false;
      if (after == '.' && end + 1 < text.size() && labelByte(after2)) return false;
      return true;
    case IndicatorType::kEmail:
      if (pos > 0 && localPartByte(before)) return false;
      if (end < text.size() && labelByte(after)) return false;
      if (after == '.' && end + 1 < text.size() && labelByte(after2)) return false;
      return true;
    case IndicatorType::kMd5:
    case IndicatorType::kSha1:
    case IndicatorType::kSha256:
      return !(pos > 0 && hexByte(before)) && !(end < text.size() && hexByte(after));
    default:
      return true;
  }
}

// The number of bytes every match of a generated regex ("LABEL-[0-9]{N}") has.
size_t regexMatchLength(const std::string& expression) {
  const size_t dash = expression.find("-[0-9]{");
  return dash + 1 + std::stoul(expression.substr(dash + 7));
}

class NaiveMatcher {
 public:
  explicit NaiveMatcher(const IndicatorSet& set) : set_(set) {}

  std::vector<Hit> match(const Event& event) {
    hits_.clear();
    seen_.clear();
    if (event.src_ip) address(*event.src_ip, "source.ip");
    if (event.dst_ip) address(*event.dst_ip, "destination.ip");
    for (size_t i = 0; i < event.field_count; ++i) {
      if (auto a = parseIp(event.fields[i].value)) address(*a, event.fields[i].name);
    }
    text(event, event.message, "message", true);
    for (size_t i = 0; i < event.field_count; ++i) {
      if (!inside(event.message, event.fields[i].value)) {
        text(event, event.fields[i].value, event.fields[i].name, false);
      }
    }
    return hits_;
  }

 private:
  static bool inside(std::string_view outer, std::string_view inner) {
    return !outer.empty() && inner.data() >= outer.data() &&
           inner.data() + inner.size() <= outer.data() + outer.size();
  }

  void add(uint32_t id, std::string_view field) {
    if (std::find(seen_.begin(), seen_.end(), id) != seen_.end()) return;
    seen_.push_back(id);
    const Indicator& ind = set_.indicator(id);
    hits_.emplace_back(ind.text, ind.type, std::string(field), ind.lists);
  }

  void address(const IpAddr& addr, std::string_view field) {
    int best = -1;
    int best_len = -1;
    for (uint32_t id = 0; id < set_.size(); ++id) {
      const Indicator& ind = set_.indicator(id);
      if (ind.type == IndicatorType::kIpv4 || ind.type == IndicatorType::kIpv6) {
        if (*parseIp(ind.text) == addr) {
          best = static_cast<int>(id);
          best_len = 129;
        }
      } else if (ind.type == IndicatorType::kCidr) {
        IpPrefix p = *parsePrefix(ind.text);
        bool contained = true;
        for (int bit = 0; bit < p.len; ++bit) {
          int mask = 0x80 >> (bit % 8);
          if ((p.addr.bytes[bit / 8] & mask) != (addr.bytes[bit / 8] & mask)) contained = false;
        }
        if (contained && p.len > best_len) {
          best = static_cast<int>(id);
          best_len = p.len;
        }
      }
    }
    if (best >= 0) add(static_cast<uint32_t>(best), field);
  }

  void text(const Event& event, std::string_view value, std::string_view field, bool attribute) {
    std::string haystack = lower(value);
    // (end offset, id, start) of the first occurrence of each indicator passing the rules.
    std::vector<std::tuple<size_t, uint32_t, size_t>> found;
    for (uint32_t id = 0; id < set_.size(); ++id) {
      const Indicator& ind = set_.indicator(id);
      if (ind.type == IndicatorType::kIpv4 || ind.type == IndicatorType::kIpv6 ||
          ind.type == IndicatorType::kCidr) {
        continue;
      }
      if (ind.type == IndicatorType::kRegex) {
        // The generator's regexes match a fixed number of bytes, so the first match by
        // start is also the first by end. A regex hit counts at its last byte.
        const std::regex re(ind.text, std::regex::icase);
        const size_t len = regexMatchLength(ind.text);
        for (size_t pos = 0; pos + len <= haystack.size(); ++pos) {
          if (std::regex_match(haystack.substr(pos, len), re)) {
            found.emplace_back(pos + len, id, pos + len - 1);
            break;
          }
        }
        continue;
      }
      std::string needle = lower(ind.text);
      for (size_t pos = haystack.find(needle); pos != std::string::npos;
           pos = haystack.find(needle, pos + 1)) {
        if (naiveBoundary(haystack, pos, needle.size(), ind.type)) {
          found.emplace_back(pos + needle.size(), id, pos);
          break;
        }
      }
    }
    std::sort(found.begin(), found.end());
    for (const auto& [end, id, start] : found) {
      std::string_view name = field;
      if (attribute) {
        std::string_view hit = value.substr(start, end - start);
        for (size_t i = 0; i < event.field_count; ++i) {
          if (inside(event.fields[i].value, hit)) {
            name = event.fields[i].name;
            break;
          }
        }
      }
      add(id, name);
    }
  }

  const IndicatorSet& set_;
  std::vector<Hit> hits_;
  std::vector<uint32_t> seen_;
};

class Generator {
 public:
  explicit Generator(uint32_t seed) : rng_(seed) {}

  size_t below(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }
  template <typename T>
  const T& pick(const std::vector<T>& v) {
    return v[below(v.size())];
  }

  std::string domain() {
    static const std::vector<std::string> labels = {"a", "b", "bad", "evil", "x-y", "c2", "ab"};
    static const std::vector<std::string> tlds = {"ex", "example", "com"};
    std::string out;
    size_t n = 1 + below(3);
    for (size_t i = 0; i < n; ++i) out += pick(labels) + ".";
    return out + pick(tlds);
  }

  std::string hex(size_t len) {
    static const char kDigits[] = "0123456789abcdef";
    std::string out;
    for (size_t i = 0; i < len; ++i) out += kDigits[below(16)];
    return out;
  }

  std::string hash() {
    static const std::vector<size_t> lengths = {32, 40, 64};
    // A small alphabet makes hashes that overlap one another.
    std::string out = hex(pick(lengths));
    if (below(2) == 0)
      std::replace_if(
          out.begin(), out.end(), [](char c) { return c > '1'; }, '0');
    return out;
  }

  std::string url() {
    static const std::vector<std::string> paths = {"", "/", "/a", "/A/b", "/x.php?q=1"};
    static const std::vector<std::string> schemes = {"http", "https", "HTTP"};
    return pick(schemes) + "://" + domain() + pick(paths);
  }

  std::string email() {
    static const std::vector<std::string> locals = {"a", "ceo", "x.y", "b-1"};
    return pick(locals) + "@" + domain();
  }

  // A regex of fixed match length, "LABEL-[0-9]{N}", with the text of one match.
  std::string regex() {
    static const std::vector<std::string> labels = {"beacon", "c2", "evil", "ab"};
    return pick(labels) + "-[0-9]{" + std::to_string(2 + below(3)) + "}";
  }
  std::string regexMatch(const std::string& expression) {
    std::string out = expression.substr(0, expression.find("-[0-9]{") + 1);
    const size_t digits = regexMatchLength(expression) - out.size();
    for (size_t i = 0; i < digits; ++i) out += static_cast<char>('0' + below(10));
    return out;
  }

  std::string address() {
    switch (below(4)) {
      case 0:
        return "10.0." + std::to_string(below(4)) + "." + std::to_string(below(6));
      case 1:
        return "::ffff:10.0." + std::to_string(below(4)) + "." + std::to_string(below(6));
      case 2:
        return "2001:db8:" + std::to_string(below(3)) + "::" + std::to_string(below(4));
      default:
        return "192.0.2." + std::to_string(below(4));
    }
  }

  std::string cidr() {
    switch (below(4)) {
      case 0:
        return "10.0." + std::to_string(below(4)) + ".0/24";
      case 1:
        return "10.0.0.0/" + std::to_string(14 + below(4));
      case 2:
        return "2001:db8:" + std::to_string(below(3)) + "::/48";
      default:
        return "2001:db8::/32";
    }
  }

  std::string listText() {
    std::string out;
    for (int i = 0; i < 12; ++i) out += domain() + "\n";
    for (int i = 0; i < 4; ++i) out += hash() + "\n";
    for (int i = 0; i < 4; ++i) out += url() + "\n";
    for (int i = 0; i < 6; ++i) out += address() + "\n";
    for (int i = 0; i < 3; ++i) out += cidr() + "\n";
    return out;
  }

  std::vector<std::string> emails() {
    std::vector<std::string> out;
    for (int i = 0; i < 3; ++i) out.push_back(email());
    return out;
  }

  std::vector<std::string> regexes() {
    std::vector<std::string> out;
    for (int i = 0; i < 3; ++i) out.push_back(regex());
    return out;
  }

  std::string randomCase(std::string s) {
    for (char& c : s) {
      if (below(4) == 0) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    return s;
  }

  // A message of pieces from the set, near-misses and filler, joined by separators that
  // sit on both sides of every boundary rule.
  std::string message(const IndicatorSet& set) {
    static const std::vector<std::string> separators = {" ", ".", "-", "/",  ":",  "a",  "0",
                                                        "",  "@", "=", "\"", ". ", ".x", "F"};
    std::string out;
    size_t pieces = 2 + below(6);
    for (size_t i = 0; i < pieces; ++i) {
      out += pick(separators);
      switch (below(5)) {
        case 0:
        case 1:
          if (set.size() > 0) {
            const Indicator ind = set.indicator(static_cast<uint32_t>(below(set.size())));
            out += randomCase(ind.type == IndicatorType::kRegex ? regexMatch(ind.text) : ind.text);
          }
          break;
        case 2:
          out += domain();
          break;
        case 3:
          out += hash();
          break;
        default:
          out += "word";
          break;
      }
    }
    return out + pick(separators);
  }

  void fillEvent(const IndicatorSet& set, Event& event) {
    event.reset();
    std::string text = message(set);
    event.raw = event.arena.copy(text);
    event.message = event.raw;
    if (below(2) == 0) event.src_ip = parseIp(address());
    if (below(3) == 0) event.dst_ip = parseIp(address());
    if (below(3) == 0) event.addField("src", event.arena.copy(address()));
    if (below(2) == 0) event.addField("decoded", event.arena.copy(message(set)));
    if (below(2) == 0 && !event.message.empty()) {
      size_t start = below(event.message.size());
      size_t len = below(event.message.size() - start + 1);
      event.addField("inmsg", event.message.substr(start, len));
    }
  }

 private:
  std::mt19937 rng_;
};

std::string describe(const Event& event, const std::vector<Hit>& got,
                     const std::vector<Hit>& want) {
  std::string out = "fields:";
  for (size_t i = 0; i < event.field_count; ++i) {
    out +=
        " " + std::string(event.fields[i].name) + "=[" + std::string(event.fields[i].value) + "]";
  }
  auto list = [](const std::vector<Hit>& hits) {
    std::string text;
    for (const Hit& h : hits) text += " " + std::get<0>(h) + "@" + std::get<2>(h);
    return text;
  };
  return out + "\nmatcher:" + list(got) + "\nnaive:" + list(want);
}

// The URL, email and regex hits of `hits`, in their order.
std::vector<Hit> scannedHits(const std::vector<Hit>& hits) {
  std::vector<Hit> out;
  for (const Hit& hit : hits) {
    const IndicatorType type = std::get<1>(hit);
    if (type == IndicatorType::kUrl || type == IndicatorType::kEmail ||
        type == IndicatorType::kRegex) {
      out.push_back(hit);
    }
  }
  return out;
}

// Both matchers report the same hits, with the same fields, for every random event.
TEST(DifferentialTest, MatchesNaiveMatcher) {
  size_t compared = 0;
  size_t total_hits = 0;
  Event event(16384);
  for (int seed = 1; seed <= kSets; ++seed) {
    Generator gen(static_cast<uint32_t>(seed));
    IndicatorSetBuilder builder;
    absl::StatusOr<LoadReport> report = builder.addListText("random", gen.listText(), "random");
    ASSERT_TRUE(report.ok()) << report.status();
    ASSERT_EQ(report->rejected, 0u) << report->rejections[0].reason;
    LoadReport typed;
    for (const std::string& email : gen.emails()) {
      builder.addIndicator("random", IndicatorType::kEmail, email, {}, "random:email", typed);
    }
    for (const std::string& regex : gen.regexes()) {
      builder.addIndicator("random", IndicatorType::kRegex, regex, {}, "random:regex", typed);
    }
    ASSERT_EQ(typed.rejected, 0u) << typed.rejections[0].reason;
    absl::StatusOr<std::shared_ptr<const IndicatorSet>> set = builder.build();
    ASSERT_TRUE(set.ok()) << set.status();
    Scratch scratch(**set);
    NaiveMatcher naive(**set);

    for (int i = 0; i < kEventsPerSet; ++i) {
      gen.fillEvent(**set, event);
      std::vector<Hit> want = naive.match(event);
      size_t added = matchEvent(**set, scratch, event);
      SCOPED_TRACE(::testing::Message()
                   << "seed " << seed << " event " << i << ": " << event.message);
      if (want.size() > Event::kMaxHits) {
        EXPECT_EQ(added, Event::kMaxHits);
        EXPECT_TRUE(event.has(kFlagHitsOverflow));
        continue;
      }
      std::vector<Hit> got;
      for (size_t h = 0; h < event.hit_count; ++h) {
        const IndicatorHit& hit = event.hits[h];
        got.emplace_back(std::string(hit.indicator), hit.type, std::string(hit.field),
                         std::string(hit.list));
      }
      // The Hyperscan kinds come last, ordered by text, end offset and indicator id.
      ASSERT_EQ(scannedHits(got), scannedHits(want)) << describe(event, got, want);
      std::sort(want.begin(), want.end());
      std::sort(got.begin(), got.end());
      ASSERT_EQ(got, want) << describe(event, got, want);
      ASSERT_EQ(added, want.size());
      ++compared;
      total_hits += want.size();
    }
    EXPECT_EQ(scratch.scanErrors(), 0u);
  }
  // The generator must produce hits and misses; a run with no hits proves nothing.
  EXPECT_GT(compared, static_cast<size_t>(kSets * kEventsPerSet * 9 / 10));
  EXPECT_GT(total_hits, compared);
}

// The hits of `event` in order, as compared by these tests.
std::vector<Hit> eventHits(const Event& event) {
  std::vector<Hit> out;
  for (size_t h = 0; h < event.hit_count; ++h) {
    const IndicatorHit& hit = event.hits[h];
    out.emplace_back(std::string(hit.indicator), hit.type, std::string(hit.field),
                     std::string(hit.list));
  }
  return out;
}

// matchEvents() pipelines the lookups of consecutive events. Over batches of 1 to 70
// random events it must give each event the hits that the naive matcher finds, and the
// same hits in the same order as matchEvent() on that event alone.
TEST(DifferentialTest, BatchMatchesSingleEvents) {
  constexpr size_t kBatchEvents = 70;
  std::vector<std::unique_ptr<Event>> storage;
  for (size_t i = 0; i < kBatchEvents; ++i) storage.push_back(std::make_unique<Event>(16384));
  size_t compared = 0;
  size_t total_hits = 0;
  for (int seed = 1; seed <= kSets; ++seed) {
    Generator gen(static_cast<uint32_t>(1000 + seed));
    IndicatorSetBuilder builder;
    absl::StatusOr<LoadReport> report = builder.addListText("random", gen.listText(), "random");
    ASSERT_TRUE(report.ok()) << report.status();
    LoadReport typed;
    for (const std::string& email : gen.emails()) {
      builder.addIndicator("random", IndicatorType::kEmail, email, {}, "random:email", typed);
    }
    for (const std::string& regex : gen.regexes()) {
      builder.addIndicator("random", IndicatorType::kRegex, regex, {}, "random:regex", typed);
    }
    ASSERT_EQ(typed.rejected, 0u) << typed.rejections[0].reason;
    absl::StatusOr<std::shared_ptr<const IndicatorSet>> set = builder.build();
    ASSERT_TRUE(set.ok()) << set.status();
    Scratch scratch(**set);
    NaiveMatcher naive(**set);

    // Batch sizes 1, 2, 3 and random sizes up to kBatchEvents, so that the start and end
    // of the software pipeline and both of its queues run.
    const size_t size = seed <= 3 ? static_cast<size_t>(seed) : 1 + gen.below(kBatchEvents);
    std::vector<Event*> batch;
    std::vector<std::vector<Hit>> want;
    for (size_t i = 0; i < size; ++i) {
      gen.fillEvent(**set, *storage[i]);
      batch.push_back(storage[i].get());
      want.push_back(naive.match(*storage[i]));
    }
    const size_t added = matchEvents(**set, scratch, batch);

    size_t added_alone = 0;
    for (size_t i = 0; i < size; ++i) {
      Event& event = *batch[i];
      SCOPED_TRACE(::testing::Message() << "seed " << seed << " event " << i << " of " << size
                                        << ": " << event.message);
      std::vector<Hit> got = eventHits(event);
      const bool overflow = event.has(kFlagHitsOverflow);
      event.hit_count = 0;
      event.flags &= ~static_cast<uint32_t>(kFlagHitsOverflow);
      added_alone += matchEvent(**set, scratch, event);
      ASSERT_EQ(got, eventHits(event));
      ASSERT_EQ(overflow, event.has(kFlagHitsOverflow));
      if (want[i].size() > Event::kMaxHits) {
        EXPECT_EQ(got.size(), Event::kMaxHits);
        continue;
      }
      std::sort(want[i].begin(), want[i].end());
      std::sort(got.begin(), got.end());
      ASSERT_EQ(got, want[i]) << describe(event, got, want[i]);
      ++compared;
      total_hits += got.size();
    }
    EXPECT_EQ(added, added_alone);
    EXPECT_EQ(scratch.scanErrors(), 0u);
  }
  EXPECT_GT(compared, 0u);
  EXPECT_GT(total_hits, compared);
}

// Splits the lines of `text` by index: base gets those that `in_base` accepts.
std::pair<std::string, std::string> splitLines(const std::string& text,
                                               const std::function<bool(size_t)>& in_base,
                                               const std::function<bool(size_t)>& in_delta) {
  std::pair<std::string, std::string> out;
  size_t index = 0;
  size_t start = 0;
  while (start < text.size()) {
    const size_t end = text.find('\n', start);
    const std::string line = text.substr(start, end - start + 1);
    if (in_base(index)) out.first += line;
    if (in_delta(index)) out.second += line;
    ++index;
    start = end + 1;
  }
  return out;
}

// matchEventsWithDelta() walks each event once for a base and a delta set. Each event
// must get exactly the hits, in the same order and with the same flags, that
// matchEvents() over the base and then over the delta gives it. The delta shares some
// values with the base (both parts report them), has values of its own, tenant-owned
// copies, and in some sets the only domain and hash tables, so that the walk queues
// candidates for the delta part alone.
TEST(DifferentialTest, DeltaPassMatchesSeparatePasses) {
  constexpr size_t kBatchEvents = 70;
  std::vector<std::unique_ptr<Event>> storage;
  for (size_t i = 0; i < kBatchEvents; ++i) storage.push_back(std::make_unique<Event>(16384));
  size_t events_compared = 0;
  size_t delta_hits = 0;
  size_t shared_hits = 0;
  for (int seed = 1; seed <= kSets; ++seed) {
    Generator gen(static_cast<uint32_t>(2000 + seed));
    // listText() lines 0-11 are domains and 12-15 hashes. Every fourth base has neither.
    const bool base_has_names = seed % 4 != 0;
    const auto [base_text, delta_text] = splitLines(
        gen.listText(), [&](size_t i) { return i % 3 != 0 && (base_has_names || i >= 16); },
        [](size_t i) { return i % 3 == 0 || i % 5 == 0; });
    const std::vector<std::string> emails = gen.emails();
    const std::vector<std::string> regexes = gen.regexes();

    IndicatorSetBuilder base_builder;
    ASSERT_TRUE(base_builder.addListText("base", base_text, "base").ok());
    LoadReport typed;
    for (const std::string& email : emails) {
      base_builder.addIndicator("base", IndicatorType::kEmail, email, {}, "base:email", typed);
    }
    absl::StatusOr<std::shared_ptr<const IndicatorSet>> base = base_builder.build();
    ASSERT_TRUE(base.ok()) << base.status();

    IndicatorSetBuilder delta_builder;
    ASSERT_TRUE(delta_builder.addListText("delta", delta_text, "delta").ok());
    if (seed % 2 == 1) {
      for (const std::string& regex : regexes) {
        delta_builder.addIndicator("delta", IndicatorType::kRegex, regex, {}, "delta:regex",
                                   typed);
      }
    }
    // Tenant copies of part of the base text: events of tenant "acme" see them.
    ASSERT_TRUE(delta_builder.setTenant("acme").ok());
    const std::string acme_text =
        splitLines(base_text, [](size_t i) { return i % 2 == 0; }, [](size_t) { return false; })
            .first;
    ASSERT_TRUE(delta_builder.addListText("delta-acme", acme_text, "delta-acme").ok());
    ASSERT_EQ(typed.rejected, 0u) << typed.rejections[0].reason;
    absl::StatusOr<std::shared_ptr<const IndicatorSet>> delta = delta_builder.build();
    ASSERT_TRUE(delta.ok()) << delta.status();
    ASSERT_TRUE((*delta)->tenantScoped());

    Scratch base_scratch(**base);
    Scratch delta_scratch(**delta);
    // Events carry values of both sets; batch sizes 1, 2, 3 and random ones.
    const size_t size = seed <= 3 ? static_cast<size_t>(seed) : 1 + gen.below(kBatchEvents);
    std::vector<Event*> batch;
    for (size_t i = 0; i < size; ++i) {
      gen.fillEvent(i % 2 == 0 ? **base : **delta, *storage[i]);
      if (gen.below(2) == 0) storage[i]->tenant = storage[i]->arena.copy("acme");
      batch.push_back(storage[i].get());
    }
    std::vector<size_t> delta_first(size);
    const size_t added =
        matchEventsWithDelta(**base, base_scratch, **delta, delta_scratch, batch, delta_first);

    // The reference: the base pass over the batch, then the delta pass.
    std::vector<std::vector<Hit>> got(size);
    std::vector<std::vector<uint32_t>> got_ids(size);
    std::vector<bool> got_overflow(size);
    for (size_t i = 0; i < size; ++i) {
      Event& event = *batch[i];
      got[i] = eventHits(event);
      for (size_t h = 0; h < event.hit_count; ++h) got_ids[i].push_back(event.hits[h].indicator_id);
      got_overflow[i] = event.has(kFlagHitsOverflow);
      event.hit_count = 0;
      event.flags &= ~static_cast<uint32_t>(kFlagHitsOverflow);
    }
    size_t added_separately = matchEvents(**base, base_scratch, batch);
    std::vector<size_t> base_end(size);
    for (size_t i = 0; i < size; ++i) base_end[i] = batch[i]->hit_count;
    added_separately += matchEvents(**delta, delta_scratch, batch);
    EXPECT_EQ(added, added_separately) << "seed " << seed;

    for (size_t i = 0; i < size; ++i) {
      const Event& event = *batch[i];
      SCOPED_TRACE(::testing::Message() << "seed " << seed << " event " << i << " of " << size
                                        << " tenant [" << event.tenant << "]: " << event.message);
      ASSERT_EQ(got[i], eventHits(event));
      std::vector<uint32_t> ids;
      for (size_t h = 0; h < event.hit_count; ++h) ids.push_back(event.hits[h].indicator_id);
      ASSERT_EQ(got_ids[i], ids);
      ASSERT_EQ(got_overflow[i], event.has(kFlagHitsOverflow));
      ASSERT_EQ(delta_first[i], base_end[i]);
      ++events_compared;
      delta_hits += event.hit_count - base_end[i];
      for (size_t d = base_end[i]; d < event.hit_count; ++d) {
        for (size_t b = 0; b < base_end[i]; ++b) {
          if (event.hits[b].indicator == event.hits[d].indicator) ++shared_hits;
        }
      }
    }
    EXPECT_EQ(base_scratch.scanErrors(), 0u);
    EXPECT_EQ(delta_scratch.scanErrors(), 0u);
  }
  // The delta must have hits of its own and hits on values the base reported too.
  EXPECT_GT(events_compared, 0u);
  EXPECT_GT(delta_hits, events_compared / 4);
  EXPECT_GT(shared_hits, 0u);
}

// The URL and email database is skipped on text without "://" and "@". These events put
// the markers in one text and the indicator in another, change their case, and split a
// URL over fields, and each must give exactly the hits of the naive matcher, in order.
TEST(DifferentialTest, UrlEmailSkipKeepsHits) {
  IndicatorSetBuilder builder;
  ASSERT_TRUE(
      builder.addListText("t", "http://bad.ex/a\nevil.ex\nhttp://bad.ex/x-12\n", "t.txt").ok());
  LoadReport report;
  builder.addIndicator("t", IndicatorType::kEmail, "ceo@bad.ex", {}, "t:email", report);
  // A local part that ends in a UTF-8 byte.
  builder.addIndicator("t", IndicatorType::kEmail, "jos\xc3\xa9@bad.ex", {}, "t:email", report);
  builder.addIndicator("t", IndicatorType::kRegex, "beacon-[0-9]{4}", {}, "t:regex", report);
  // Ends where the second URL ends.
  builder.addIndicator("t", IndicatorType::kRegex, "x-[0-9]{2}", {}, "t:regex", report);
  ASSERT_EQ(report.rejected, 0u);
  auto set = builder.build();
  ASSERT_TRUE(set.ok()) << set.status();
  Scratch scratch(**set);
  NaiveMatcher naive(**set);

  struct Case {
    std::string name;
    std::string message;
    // Fields outside the message, then fields given as [begin, end) of the message.
    std::vector<std::pair<std::string, std::string>> fields;
    std::vector<std::tuple<std::string, size_t, size_t>> inner_fields;
    std::vector<std::pair<std::string, std::string>> expected;  // indicator, field
  };
  const std::vector<Case> cases = {
      {"no marker anywhere", "beacon-1234 from evil.ex", {}, {},
       {{"evil.ex", "message"}, {"beacon-[0-9]{4}", "message"}}},
      {"uppercase scheme", "GET HTTP://BAD.EX/A beacon-0001", {}, {},
       {{"http://bad.ex/a", "message"}, {"beacon-[0-9]{4}", "message"}}},
      {"email only in another field", "login ok beacon-9999",
       {{"decoded", "from CEO@bad.ex"}}, {},
       {{"beacon-[0-9]{4}", "message"}, {"ceo@bad.ex", "decoded"}}},
      {"url marker only in another field", "http:bad.ex/a",
       {{"decoded", "x://y http://bad.ex/a"}}, {},
       {{"http://bad.ex/a", "decoded"}}},
      {"url split across outside fields", "", {{"scheme", "http:"}, {"rest", "//bad.ex/a"}}, {},
       {}},
      {"url split across fields inside the message", "GET http://bad.ex/a now", {},
       {{"scheme", 4, 9}, {"rest", 9, 19}}, {{"http://bad.ex/a", "message"}}},
      {"url inside one inner field", "GET http://bad.ex/a now", {}, {{"url", 4, 19}},
       {{"http://bad.ex/a", "url"}}},
      {"at sign without an email", "user@ beacon-4321 @", {}, {},
       {{"beacon-[0-9]{4}", "message"}}},
      {"bind query log at sign", "client @0x7f3a 10.0.0.1#5353 (evil.ex): query: evil.ex", {},
       {}, {{"evil.ex", "message"}}},
      {"uppercase email", "mail from <CEO@BAD.EX>", {}, {}, {{"ceo@bad.ex", "message"}}},
      {"email local part ends in utf-8", "to JOS\xc3\xa9@Bad.Ex, cc", {}, {},
       {{"jos\xc3\xa9@bad.ex", "message"}}},
      {"email after a stray at sign", "@ x @, ceo@bad.ex", {}, {}, {{"ceo@bad.ex", "message"}}},
      {"email needs its boundary", "xceo@bad.ex and ceo@bad.ex", {}, {},
       {{"ceo@bad.ex", "message"}}},
      {"texts in order", "see http://bad.ex/a", {{"v", "ceo@bad.ex beacon-1111"}}, {},
       {{"http://bad.ex/a", "message"}, {"ceo@bad.ex", "v"}, {"beacon-[0-9]{4}", "v"}}},
  };
  Event event(8192);
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    event.reset();
    event.raw = event.arena.copy(c.message);
    event.message = event.raw;
    for (const auto& [name, value] : c.fields) event.addField(name, event.arena.copy(value));
    for (const auto& [name, begin, end] : c.inner_fields) {
      event.addField(name, event.message.substr(begin, end - begin));
    }
    const std::vector<Hit> want = naive.match(event);
    matchEvent(**set, scratch, event);
    std::vector<std::pair<std::string, std::string>> got;
    for (size_t h = 0; h < event.hit_count; ++h) {
      got.emplace_back(std::string(event.hits[h].indicator), std::string(event.hits[h].field));
    }
    EXPECT_EQ(got, c.expected);
    std::vector<std::pair<std::string, std::string>> naive_hits;
    for (const Hit& hit : want) naive_hits.emplace_back(std::get<0>(hit), std::get<2>(hit));
    std::sort(naive_hits.begin(), naive_hits.end());
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, naive_hits);
  }

  // A URL and a regex that end at one offset come in indicator id order, whichever
  // database found them.
  event.reset();
  event.raw = event.arena.copy("get http://bad.ex/x-12 ok");
  event.message = event.raw;
  ASSERT_EQ(matchEvent(**set, scratch, event), 2u);
  EXPECT_LT(event.hits[0].indicator_id, event.hits[1].indicator_id);
  EXPECT_EQ(scratch.scanErrors(), 0u);
}

}  // namespace
}  // namespace vigil::intel
