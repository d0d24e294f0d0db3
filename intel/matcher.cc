#include "intel/matcher.h"

#include <hs.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <new>

#include "absl/strings/ascii.h"
#include "intel/indicator_set.h"
#include "intel/internal/flat_table.h"

namespace vigil::intel {

struct Scratch::Impl {
  const IndicatorSet* set = nullptr;
  hs_scratch_t* hs = nullptr;
  // Indicator ids already reported for the current event. An event has room for at most
  // kMaxHits hits, so no more ids are ever needed.
  std::array<uint32_t, Event::kMaxHits> seen{};
  size_t seen_count = 0;
  // Written only by the owning worker; atomic so that exports may read it meanwhile.
  std::atomic<uint64_t> scan_errors{0};
};

namespace {

// Maximum length of a text parseIp() accepts: "[" + 45-byte IPv6 + "]:" + 5-digit port.
constexpr size_t kMaxAddressText = 53;
// Longest host-name run looked up whole. The builder rejects domains over 253 bytes, so
// a domain at the end of a longer run lies within its last 256 bytes.
constexpr size_t kMaxDomainBytes = 256;
// Hex digits of the shortest hash type (MD5).
constexpr size_t kMinHashDigits = 32;

bool isLabelChar(char c) { return absl::ascii_isalnum(c) || c == '-'; }

// Bytes of a host name (letters, digits, '-' and '.'), as a table for the per-byte scan.
constexpr std::array<bool, 256> kHostChars = [] {
  std::array<bool, 256> table{};
  for (int c = 0; c < 256; ++c) {
    table[static_cast<size_t>(c)] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                    (c >= '0' && c <= '9') || c == '-' || c == '.';
  }
  return table;
}();

// A domain hit counts only at label boundaries. Before: anything but a label character
// (a '.' means a subdomain). After: neither a label character nor a '.' that starts
// another label, so "bad.example.org" is no hit for "bad.example" but a root dot is fine.
bool domainEnds(std::string_view text, size_t end) {
  if (end < text.size()) {
    if (isLabelChar(text[end])) return false;
    if (text[end] == '.' && end + 1 < text.size() && isLabelChar(text[end + 1])) return false;
  }
  return true;
}

bool domainBoundary(std::string_view text, size_t start, size_t end) {
  if (start > 0 && isLabelChar(text[start - 1])) return false;
  return domainEnds(text, end);
}

// An email hit needs a byte before it that cannot be in a local part, and after it the
// same rule as a domain.
bool emailBoundary(std::string_view text, size_t start, size_t end) {
  if (start > 0) {
    char c = text[start - 1];
    if (absl::ascii_isalnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-') {
      return false;
    }
  }
  return domainEnds(text, end);
}

// True for field names whose values are file names or paths ("file.name",
// "process.executable", "TargetFilename", "Image").
bool isFileField(std::string_view name) {
  static constexpr std::string_view kParts[] = {"file", "path", "image", "process", "File",
                                                "Path", "Image", "Process"};
  for (std::string_view part : kParts) {
    if (name.find(part) != std::string_view::npos) return true;
  }
  return false;
}

bool contains(std::string_view outer, std::string_view inner) {
  return !outer.empty() && inner.data() >= outer.data() &&
         inner.data() + inner.size() <= outer.data() + outer.size();
}

[[noreturn]] void fatal(const char* what) {
  std::fprintf(stderr, "vigil intel matcher: %s\n", what);
  std::abort();
}

// State of one matchEvent() call, shared with the Hyperscan callback.
class EventMatcher {
 public:
  EventMatcher(const IndicatorSet& set, Scratch::Impl& scratch, Event& event)
      : set_(set), scratch_(scratch), event_(event), scoped_(set.tenantScoped()) {}

  bool full() const { return full_; }
  size_t added() const { return added_; }

  void matchAddress(const IpAddr& addr, std::string_view field) {
    if (std::optional<uint32_t> id = set_.lookupAddress(addr, event_.tenant)) report(*id, field);
  }

  // Looks the last path component of `value` up among the file name indicators.
  void matchFilename(std::string_view value, std::string_view field) {
    size_t slash = value.find_last_of("/\\");
    if (slash != std::string_view::npos) value.remove_prefix(slash + 1);
    std::array<char, 256> lower;
    if (value.empty() || value.size() > lower.size()) return;
    for (size_t i = 0; i < value.size(); ++i) lower[i] = absl::ascii_tolower(value[i]);
    if (std::optional<uint32_t> id = set_.lookupFilename({lower.data(), value.size()})) {
      report(*id, field);
    }
  }

  // Looks up every host name in `text` and its parent domains among the domain
  // indicators, and every run of 32, 40 or 64 hex digits among the hash indicators. A
  // host name is a run of letters, digits, '-' and '.'. A candidate starts at the run's
  // start or after a '.', and ends at the run's end or before a '.' that no label
  // follows, which is the boundary rule of domainBoundary(). A hash candidate is a
  // maximal run of hex digits, so neither neighbour is a hex digit. With
  // `attribute_fields`, hits are reported as scan() reports them.
  void matchTokens(std::string_view text, std::string_view field, bool attribute_fields) {
    text_ = text;
    field_ = field;
    attribute_fields_ = attribute_fields;
    const bool domains = set_.hasDomains();
    const bool hashes = set_.hasHashes();
    size_t i = 0;
    while (i < text.size() && !full_) {
      if (!isHostChar(text[i])) {
        ++i;
        continue;
      }
      const size_t begin = i;
      bool dotted = false;
      while (i < text.size() && isHostChar(text[i])) dotted |= text[i++] == '.';
      if (domains && dotted) matchHostRun(begin, i);
      if (hashes && i - begin >= kMinHashDigits) matchHexRuns(begin, i);
    }
  }

  // Scans `text` once. With `attribute_fields`, a hit inside a generic field value
  // that points into `text` is reported under that field's name.
  void scan(std::string_view text, std::string_view field, bool attribute_fields) {
    if (text.empty() || full_) return;
    text_ = text;
    field_ = field;
    attribute_fields_ = attribute_fields;
    hs_error_t rc = hs_scan(set_.database(), text.data(), static_cast<unsigned>(text.size()), 0,
                            scratch_.hs, &EventMatcher::onMatch, this);
    if (rc != HS_SUCCESS && rc != HS_SCAN_TERMINATED) {
      scratch_.scan_errors.fetch_add(1, std::memory_order_relaxed);
    }
  }

 private:
  static int onMatch(unsigned id, unsigned long long /*from*/, unsigned long long to,
                     unsigned /*flags*/, void* context) {
    auto* self = static_cast<EventMatcher*>(context);
    const IndicatorType type = self->set_.type(id);
    auto end = static_cast<size_t>(to);
    // A regex hit has no known start without HS_FLAG_SOM_LEFTMOST; its last byte
    // decides the field.
    size_t start = type == IndicatorType::kRegex ? (end > 0 ? end - 1 : 0)
                                                 : end - self->set_.text(id).size();
    bool boundary_ok = true;
    if (type == IndicatorType::kDomain) boundary_ok = domainBoundary(self->text_, start, end);
    if (type == IndicatorType::kEmail) boundary_ok = emailBoundary(self->text_, start, end);
    if (boundary_ok) self->report(id, self->fieldAt(start, end));
    return self->full_ ? 1 : 0;  // non-zero stops the scan
  }

  static bool isHostChar(char c) { return kHostChars[static_cast<unsigned char>(c)]; }

  // Looks up the candidates of one host-name run text_[begin, end).
  void matchHostRun(size_t begin, size_t end) {
    std::array<char, kMaxDomainBytes> lower;
    // A longer run is looked up in its last kMaxDomainBytes only, where every domain that
    // ends at the run's end starts. Its first byte starts a name only after a '.'.
    bool first_starts = true;
    if (end - begin > lower.size()) {
      begin = end - lower.size();
      first_starts = text_[begin - 1] == '.';
    }
    const size_t len = end - begin;
    for (size_t k = 0; k < len; ++k) lower[k] = absl::ascii_tolower(text_[begin + k]);
    const std::string_view run(lower.data(), len);
    for (size_t stop = len; stop > 0 && !full_; --stop) {
      // An end needs the run's end or a '.' with no label after it.
      if (stop < len && !(run[stop] == '.' && (stop + 1 == len || run[stop + 1] == '.'))) {
        continue;
      }
      const size_t last_dot = run.rfind('.', stop - 1);
      if (last_dot == std::string_view::npos || last_dot + 1 == stop) continue;
      // A name whose last label is all digits is an address, never a domain indicator.
      const std::string_view tld = run.substr(last_dot + 1, stop - last_dot - 1);
      if (std::all_of(tld.begin(), tld.end(), absl::ascii_isdigit)) continue;
      // The candidates start at the run's start and after each '.' before last_dot.
      // Their hashes come from one backward pass over run[0, stop), shortest first.
      std::array<uint32_t, kMaxDomainBytes> starts;
      size_t count = 0;
      size_t start = first_starts ? 0 : run.find('.') + 1;
      if (start > last_dot) continue;
      while (true) {
        starts[count++] = static_cast<uint32_t>(start);
        const size_t dot = run.find('.', start);
        if (dot >= last_dot) break;
        start = dot + 1;
      }
      std::array<uint64_t, kMaxDomainBytes> hashes;
      internal::SuffixHasher hasher(run.substr(0, stop), set_.textHashSeed());
      for (size_t k = count; k-- > 0;) hashes[k] = hasher.suffix(starts[k]);
      for (size_t k = 0; k < count && !full_; ++k) {
        const std::string_view name = run.substr(starts[k], stop - starts[k]);
        if (std::optional<uint32_t> id = set_.lookupDomain(name, hashes[k])) {
          report(*id, fieldAt(begin + starts[k], begin + stop));
        }
      }
    }
  }

  // Looks up each run of exactly 32, 40 or 64 hex digits in text_[begin, end), a host
  // run, among the hash indicators.
  void matchHexRuns(size_t begin, size_t end) {
    size_t i = begin;
    while (i < end && !full_) {
      if (!absl::ascii_isxdigit(text_[i])) {
        ++i;
        continue;
      }
      const size_t start = i;
      while (i < end && absl::ascii_isxdigit(text_[i])) ++i;
      const size_t len = i - start;
      if (len != 32 && len != 40 && len != 64) continue;
      std::array<char, 64> lower;
      for (size_t k = 0; k < len; ++k) lower[k] = absl::ascii_tolower(text_[start + k]);
      if (std::optional<uint32_t> id = set_.lookupHash({lower.data(), len})) {
        report(*id, fieldAt(start, i));
      }
    }
  }

  std::string_view fieldAt(size_t start, size_t end) const {
    if (!attribute_fields_) return field_;
    std::string_view hit = text_.substr(start, end - start);
    std::string_view name = field_;
    event_.visitFields([&](const Field& field) {
      if (!contains(field.value, hit)) return true;
      name = field.name;
      return false;
    });
    return name;
  }

  // Reports the copies of group head `id` that the event's tenant sees: the copy of every
  // tenant and the tenant's own. Lookups only return heads, so `seen` holds heads, and
  // only heads that gave a hit, which keeps it within kMaxHits entries.
  void report(uint32_t id, std::string_view field) {
    for (size_t i = 0; i < scratch_.seen_count; ++i) {
      if (scratch_.seen[i] == id) return;
    }
    // Without tenant-owned indicators every group is one indicator of every tenant.
    if (scoped_) {
      reportCopies(id, field);
      return;
    }
    if (addHit(id, field) && scratch_.seen_count < scratch_.seen.size()) {
      scratch_.seen[scratch_.seen_count++] = id;
    }
  }

  // The tenant walk of report(), kept out of line so that the lookup loops that call
  // report() stay as small as they are for sets without tenants.
  [[gnu::noinline]] void reportCopies(uint32_t id, std::string_view field) {
    const size_t before = added_;
    for (uint32_t copy = id;; ++copy) {
      if (set_.visibleTo(copy, event_.tenant) && !addHit(copy, field)) return;
      if (!set_.hasNextCopy(copy)) break;
    }
    if (added_ != before && scratch_.seen_count < scratch_.seen.size()) {
      scratch_.seen[scratch_.seen_count++] = id;
    }
  }

  // Appends one hit; false once the event is full. addHit() then sets kFlagHitsOverflow,
  // so the caller sees that hits were lost, and the scan stops.
  bool addHit(uint32_t id, std::string_view field) {
    if (!event_.addHit(IndicatorHit{set_.text(id), set_.lists(id), set_.type(id), field, id,
                                    set_.score(id)})) {
      full_ = true;
      return false;
    }
    ++added_;
    return true;
  }

  const IndicatorSet& set_;
  Scratch::Impl& scratch_;
  Event& event_;
  const bool scoped_;  // the set has tenant-owned indicators
  std::string_view text_;
  std::string_view field_;
  bool attribute_fields_ = false;
  bool full_ = false;
  size_t added_ = 0;
};

// True when `value` may be an address in a spelling parseIp() accepts. The check saves
// the copy and inet_pton() call for the common field that is plainly text.
bool mayBeAddress(std::string_view value) {
  if (value.size() < 2 || value.size() > kMaxAddressText) return false;
  char c = value.front();
  return absl::ascii_isxdigit(c) || c == ':' || c == '[';
}

}  // namespace

Scratch::Scratch(const IndicatorSet& set) : impl_(std::make_unique<Impl>()) {
  impl_->set = &set;
  if (set.database() == nullptr) return;
  hs_error_t rc = hs_alloc_scratch(set.database(), &impl_->hs);
  if (rc == HS_NOMEM) throw std::bad_alloc();
  if (rc != HS_SUCCESS) fatal("hs_alloc_scratch failed on a database this module compiled");
}

Scratch::~Scratch() { hs_free_scratch(impl_->hs); }

uint64_t Scratch::scanErrors() const {
  return impl_->scan_errors.load(std::memory_order_relaxed);
}

size_t matchEvent(const IndicatorSet& set, Scratch& scratch, Event& event) {
  Scratch::Impl& impl = scratch.impl();
  if (impl.set != &set) fatal("matchEvent() got a Scratch created for another IndicatorSet");
  impl.seen_count = 0;
  EventMatcher matcher(set, impl, event);

  if (event.src_ip) matcher.matchAddress(*event.src_ip, "source.ip");
  if (event.dst_ip) matcher.matchAddress(*event.dst_ip, "destination.ip");
  // Every generic field, the overflow area included; a visitor returns false to stop once
  // the event holds no more hits.
  event.visitFields([&](const Field& field) {
    if (matcher.full()) return false;
    if (!mayBeAddress(field.value)) return true;
    if (std::optional<IpAddr> addr = parseIp(field.value)) matcher.matchAddress(*addr, field.name);
    return true;
  });
  if (set.hasFilenames()) {
    if (!event.app.empty()) matcher.matchFilename(event.app, "process.name");
    event.visitFields([&](const Field& field) {
      if (matcher.full()) return false;
      if (isFileField(field.name)) matcher.matchFilename(field.value, field.name);
      return true;
    });
  }

  if (set.hasDomains() || set.hasHashes()) {
    matcher.matchTokens(event.message, "message", /*attribute_fields=*/true);
    event.visitFields([&](const Field& field) {
      if (matcher.full()) return false;
      if (contains(event.message, field.value)) return true;
      matcher.matchTokens(field.value, field.name, /*attribute_fields=*/false);
      return true;
    });
  }

  if (set.database() == nullptr) return matcher.added();
  matcher.scan(event.message, "message", /*attribute_fields=*/true);
  // JSON events may carry decoded values outside the message; scan those separately.
  event.visitFields([&](const Field& field) {
    if (matcher.full()) return false;
    if (contains(event.message, field.value)) return true;
    matcher.scan(field.value, field.name, /*attribute_fields=*/false);
    return true;
  });
  return matcher.added();
}

}  // namespace vigil::intel
