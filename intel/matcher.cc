#include "intel/matcher.h"

#include <hs.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <optional>
#include <span>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "intel/indicator_set.h"
#include "intel/internal/flat_table.h"
#include "intel/internal/punycode.h"
#include "intel/internal/text.h"
#include "intel/internal/url_email_marker.h"

namespace vigil::intel {

namespace {

// Kind of a queued lookup, which names the table it probes.
enum class LookupKind : uint8_t { kAddress, kFilename, kDomain, kHash };

// One lookup of an event, queued so that the table lines of all of them are prefetched
// before the first is probed (see EventMatcher::flush()).
struct PendingLookup {
  IpAddr address;           // kAddress
  uint64_t hash = 0;        // text kinds: hash of the key (IndicatorSet::textHashSeed())
  std::string_view field;   // the field reported with a hit
  std::string_view hit;     // the key's bytes in the event, for fieldFor()
  uint32_t key_offset = 0;  // text kinds: the lower-case key in Scratch::Impl::keys
  uint16_t key_len = 0;
  LookupKind kind = LookupKind::kAddress;
  bool attribute_fields = false;  // report the generic field whose value contains `hit`
};

// Maximum number of lookups queued before they are probed. A syslog line of the bench
// gives 1 to 5; a full queue is probed early, which costs overlap, not hits.
constexpr size_t kMaxPendingLookups = 64;
// Bytes of lower-case keys kept for the queued lookups. One host run takes at most
// kMaxDomainBytes (256), a file name 256 and a hash 64.
constexpr size_t kKeyBytes = 4096;

// One Hyperscan match of the text being scanned that will give a hit when reported.
struct TextMatch {
  uint32_t end = 0;  // offset after the match's last byte
  uint32_t id = 0;   // indicator id, a group head
};

// Matches of one text kept for sorting. Each database scan stops once it has kept more
// matches than the event has room for hits and moves past that end offset (see
// EventMatcher::onMatch()), so only matches that share one end offset go beyond
// Event::kMaxHits + 1 per scan.
constexpr size_t kMaxTextMatches = 4 * Event::kMaxHits;

// A lookup hit in the delta part: a group head of the delta set that the event's tenant
// matches, and the field it is reported under.
struct DeltaHit {
  uint32_t id = 0;
  std::string_view field;
};

// The per-event state of one matchEvent(): the ids reported and the queued lookups.
// matchEvents() keeps two, so that it can queue the lookups of one event while the
// lookups of the event before it are still waiting to be probed.
struct EventQueue {
  // Indicator ids already reported for the event. An event has room for at most
  // kMaxHits hits, so no more ids are ever needed.
  std::array<uint32_t, Event::kMaxHits> seen{};
  size_t seen_count = 0;
  // Lookups of the event not yet probed, in the order their hits are reported, and the
  // lower-case keys of their text lookups.
  std::array<PendingLookup, kMaxPendingLookups> pending{};
  size_t pending_count = 0;
  std::array<char, kKeyBytes> keys{};
  size_t keys_used = 0;
  // Delta part hits of the lookups probed so far (see EventMatcher::probeDelta()),
  // reported after the base part's hits. One entry more than an event has room for, so
  // reporting them overflows the event whenever the separate pass would.
  std::array<DeltaHit, Event::kMaxHits + 1> delta_hits{};
  size_t delta_hit_count = 0;
};

}  // namespace

struct Scratch::Impl {
  const IndicatorSet* set = nullptr;
  hs_scratch_t* hs = nullptr;
  std::array<EventQueue, 2> queues{};
  // Matches of the text being scanned, from both databases.
  std::array<TextMatch, kMaxTextMatches> text_matches{};
  size_t text_match_count = 0;
  // Written only by the owning worker; atomic so that exports may read it meanwhile.
  std::atomic<uint64_t> scan_errors{0};
};

namespace {

// Maximum length of a text parseIp() accepts: "[" + 45-byte IPv6 + "]:" + 5-digit port.
constexpr size_t kMaxAddressText = 53;
// Longest host-name run looked up whole. The builder rejects domains over 253 bytes, so
// a domain at the end of a longer run lies within its last 256 bytes.
constexpr size_t kMaxDomainBytes = 256;
// Bytes at the start of a message that prefetchEventKeys() loads: a syslog line of the
// bench is about 94 bytes, and a longer message is read ahead by the hardware prefetcher
// once the walk streams through it.
constexpr size_t kPrefetchedMessageBytes = 256;
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
  static constexpr std::string_view kParts[] = {"file", "path", "image", "process",
                                                "File", "Path", "Image", "Process"};
  for (std::string_view part : kParts) {
    if (name.find(part) != std::string_view::npos) return true;
  }
  return false;
}

bool contains(std::string_view outer, std::string_view inner) {
  return !outer.empty() && inner.data() >= outer.data() &&
         inner.data() + inner.size() <= outer.data() + outer.size();
}

// Fields that contain a URL or a request target: "url", "*.url", "*.uri", "*.request_uri",
// "url.original", "url.full" (ECS) and CEF's "request".
bool isUrlField(std::string_view name) {
  const size_t dot = name.rfind('.');
  const std::string_view last = dot == std::string_view::npos ? name : name.substr(dot + 1);
  if (absl::EqualsIgnoreCase(internal::av(last), "url") ||
      absl::EqualsIgnoreCase(internal::av(last), "uri") ||
      absl::EqualsIgnoreCase(internal::av(last), "request_uri")) {
    return true;
  }
  if (last == "original" || last == "full") {
    return dot != std::string_view::npos && dot >= 3 &&
           absl::EqualsIgnoreCase(internal::av(name.substr(dot - 3, 3)), "url") &&
           (dot == 3 || name[dot - 4] == '.');
  }
  return name == "cef.request";
}

// The host of a URL or request target, a view into `url`: after "scheme://" or "//" and
// any userinfo, up to the port, path, query or fragment. Empty for a path alone
// ("/a?b") and for a bracketed IPv6 literal, which contains no domain. Text without a
// scheme ("bad.example/x") starts with its host.
std::string_view urlHost(std::string_view url) {
  size_t start = 0;
  const size_t scheme = url.find("://");
  if (scheme != std::string_view::npos && scheme > 0 &&
      std::all_of(url.begin(), url.begin() + static_cast<std::ptrdiff_t>(scheme), [](char c) {
        return absl::ascii_isalnum(c) || c == '+' || c == '-' || c == '.';
      })) {
    start = scheme + 3;
  } else if (url.starts_with("//")) {
    start = 2;
  } else if (url.starts_with("/")) {
    return {};
  }
  std::string_view authority = url.substr(start);
  authority = authority.substr(0, authority.find_first_of("/?#"));
  if (const size_t at = authority.rfind('@'); at != std::string_view::npos) {
    authority.remove_prefix(at + 1);
  }
  if (authority.starts_with("[")) return {};
  return authority.substr(0, authority.find(':'));
}

[[noreturn]] void fatal(const char* what) {
  std::fprintf(stderr, "vigil intel matcher: %s\n", what);
  std::abort();
}

// Host-name bytes and dots among 64 bytes of text, one bit per byte.
struct ByteMasks {
  uint64_t host = 0;  // kHostChars bytes and every byte that is not ASCII
  uint64_t dots = 0;
  uint64_t wide = 0;  // bytes that are not ASCII
};

// Classifies the 64 bytes at `p`, which must all be readable. The SSE2 path (every
// x86-64 CPU has it) gives the same bits as the byte loop. Bytes that are not ASCII join
// host-name runs, since they may be letters of an internationalized name; queueRun()
// sorts them out.
ByteMasks classify64(const char* p) {
  ByteMasks masks;
#if defined(__SSE2__)
  const __m128i case_bit = _mm_set1_epi8(0x20);
  const __m128i letter_a = _mm_set1_epi8('a');
  const __m128i digit_0 = _mm_set1_epi8('0');
  const __m128i letters = _mm_set1_epi8(25);
  const __m128i digits = _mm_set1_epi8(9);
  const __m128i dash = _mm_set1_epi8('-');
  const __m128i dot = _mm_set1_epi8('.');
  for (int part = 0; part < 4; ++part) {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * part));
    // x - 'a' <= 25 and x - '0' <= 9 as unsigned bytes: min(v, limit) == v.
    const __m128i from_a = _mm_sub_epi8(_mm_or_si128(bytes, case_bit), letter_a);
    const __m128i from_0 = _mm_sub_epi8(bytes, digit_0);
    const __m128i is_dot = _mm_cmpeq_epi8(bytes, dot);
    const __m128i host =
        _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(from_a, letters), from_a),
                                  _mm_cmpeq_epi8(_mm_min_epu8(from_0, digits), from_0)),
                     _mm_or_si128(_mm_cmpeq_epi8(bytes, dash), is_dot));
    const auto shift = static_cast<unsigned>(16 * part);
    masks.host |= uint64_t{static_cast<uint16_t>(_mm_movemask_epi8(host))} << shift;
    masks.dots |= uint64_t{static_cast<uint16_t>(_mm_movemask_epi8(is_dot))} << shift;
    masks.wide |= uint64_t{static_cast<uint16_t>(_mm_movemask_epi8(bytes))} << shift;
  }
#else
  for (unsigned i = 0; i < 64; ++i) {
    const auto c = static_cast<unsigned char>(p[i]);
    masks.host |= uint64_t{kHostChars[c]} << i;
    masks.dots |= uint64_t{c == '.'} << i;
    masks.wide |= uint64_t{c >= 0x80} << i;
  }
#endif
  masks.host |= masks.wide;
  return masks;
}

// Writes the `n` bytes at `in` to `out` with ASCII letters lower-cased, and when `dots`
// is not null, the positions of the '.' bytes among them to `dots` (room for n entries).
// Returns the number of dots stored.
size_t lowerCopy(const char* in, size_t n, char* out, uint16_t* dots) {
  size_t count = 0;
  size_t k = 0;
#if defined(__SSE2__)
  const __m128i letter_upper_a = _mm_set1_epi8('A');
  const __m128i letters = _mm_set1_epi8(25);
  const __m128i case_bit = _mm_set1_epi8(0x20);
  const __m128i dot = _mm_set1_epi8('.');
  for (; k + 16 <= n; k += 16) {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + k));
    const __m128i from_a = _mm_sub_epi8(bytes, letter_upper_a);
    const __m128i upper = _mm_cmpeq_epi8(_mm_min_epu8(from_a, letters), from_a);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + k),
                     _mm_or_si128(bytes, _mm_and_si128(upper, case_bit)));
    if (dots == nullptr) continue;
    auto mask = static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(bytes, dot)));
    while (mask != 0) {
      dots[count++] = static_cast<uint16_t>(k + static_cast<size_t>(std::countr_zero(mask)));
      mask &= mask - 1;
    }
  }
#endif
  for (; k < n; ++k) {
    out[k] = absl::ascii_tolower(in[k]);
    if (dots != nullptr && in[k] == '.') dots[count++] = static_cast<uint16_t>(k);
  }
  return count;
}

// The bits of positions [from, 64) of a 64-bit mask, 0 when from is 64.
uint64_t bitsFrom(uint64_t mask, size_t from) { return from >= 64 ? 0 : mask >> from; }

// State of one matchEvent() call, shared with the Hyperscan callback.
//
// The address, file name, domain and hash lookups are queued, not probed at once: queueing
// one computes its key's hash and prefetches the table line that its probe reads first.
// flush() then probes the queue in order, so hits come in the same order as without the
// queue, while the cache misses of an event's keys (tables of several megabytes) overlap.
class EventMatcher {
 public:
  // With a `delta` set, every queued lookup is probed in the delta set as well, and its
  // hits are kept in the queue for a matcher of the delta part (reportDeltaHits()). The
  // lookups queued are then those that either set has a table for.
  EventMatcher(const IndicatorSet& set, Scratch::Impl& scratch, EventQueue& queue, Event& event,
               const IndicatorSet* delta = nullptr)
      : set_(set),
        scratch_(scratch),
        queue_(queue),
        event_(event),
        scoped_(set.tenantScoped()),
        delta_(delta),
        filenames_(set.hasFilenames() || (delta != nullptr && delta->hasFilenames())),
        domains_(set.hasDomains() || (delta != nullptr && delta->hasDomains())),
        hashes_(set.hasHashes() || (delta != nullptr && delta->hasHashes())) {
    queue_.seen_count = 0;
    queue_.pending_count = 0;
    queue_.keys_used = 0;
    queue_.delta_hit_count = 0;
  }

  bool full() const { return full_; }
  size_t added() const { return added_; }
  bool wantsFilenames() const { return filenames_; }
  bool wantsTokens() const { return domains_ || hashes_; }
  const EventQueue& queue() const { return queue_; }

  void queueAddress(const IpAddr& addr, std::string_view field) {
    set_.prefetchAddress(addr);
    PendingLookup& lookup = push();
    lookup.address = addr;
    lookup.field = field;
    lookup.attribute_fields = false;
    lookup.kind = LookupKind::kAddress;
  }

  // Queues the last path component of `value` for the file name indicators.
  void queueFilename(std::string_view value, std::string_view field) {
    size_t slash = value.find_last_of("/\\");
    if (slash != std::string_view::npos) value.remove_prefix(slash + 1);
    if (value.empty() || value.size() > kMaxFilenameBytes) return;
    const std::string_view key = storeLowered(value);
    queueText(LookupKind::kFilename, key, internal::hashText(key, set_.textHashSeed()), value,
              field, false);
  }

  // Queues every host name in `text` and its parent domains for the domain indicators,
  // and every run of 32, 40 or 64 hex digits for the hash indicators. A host name is a
  // run of letters, digits, '-' and '.'. A candidate starts at the run's start or after a
  // '.', and ends at the run's end or before a '.' that no label follows, which is the
  // boundary rule of domainBoundary(). A hash candidate is a maximal run of hex digits,
  // so neither neighbour is a hex digit. With `attribute_fields`, hits are reported as
  // scan() reports them.
  void queueTokens(std::string_view text, std::string_view field, bool attribute_fields) {
    const bool domains = domains_;
    const bool hashes = hashes_;
    size_t run_begin = SIZE_MAX;  // start of the run that the last block ended in
    bool dotted = false;
    bool wide = false;
    for (size_t base = 0; base < text.size() && !full_; base += 64) {
      ByteMasks masks;
      if (text.size() - base >= 64) {
        masks = classify64(text.data() + base);
      } else {
        // The tail, padded with bytes that are not host-name bytes.
        std::array<char, 64> tail{};
        std::memcpy(tail.data(), text.data() + base, text.size() - base);
        masks = classify64(tail.data());
      }
      size_t bit = 0;
      while (bit < 64 && !full_) {
        if (run_begin == SIZE_MAX) {
          const uint64_t rest = bitsFrom(masks.host, bit);
          if (rest == 0) break;
          bit += static_cast<size_t>(std::countr_zero(rest));
          run_begin = base + bit;
          dotted = false;
          wide = false;
        }
        const uint64_t not_host = bitsFrom(~masks.host, bit);
        if (not_host == 0) {
          // The run goes on into the next block.
          dotted |= bitsFrom(masks.dots, bit) != 0;
          wide |= bitsFrom(masks.wide, bit) != 0;
          break;
        }
        const auto len = static_cast<size_t>(std::countr_zero(not_host));
        const uint64_t in_run = (uint64_t{1} << len) - 1;
        dotted |= (bitsFrom(masks.dots, bit) & in_run) != 0;
        wide |= (bitsFrom(masks.wide, bit) & in_run) != 0;
        bit += len;
        queueRun(text, run_begin, base + bit, dotted, wide, domains, hashes, field,
                 attribute_fields);
        run_begin = SIZE_MAX;
      }
    }
    if (run_begin != SIZE_MAX && !full_) {
      queueRun(text, run_begin, text.size(), dotted, wide, domains, hashes, field,
               attribute_fields);
    }
  }

  // Probes the queued lookups in the order they were queued and reports their hits.
  // Stops when the event is full.
  void flush() {
    const size_t count = queue_.pending_count;
    queue_.pending_count = 0;
    for (size_t i = 0; i < count && !full_; ++i) {
      const PendingLookup& lookup = queue_.pending[i];
      std::optional<uint32_t> id;
      const std::string_view key(queue_.keys.data() + lookup.key_offset, lookup.key_len);
      switch (lookup.kind) {
        case LookupKind::kAddress:
          id = set_.lookupAddress(lookup.address, event_.tenant);
          break;
        case LookupKind::kFilename:
          id = set_.lookupFilename(key, lookup.hash);
          break;
        case LookupKind::kDomain:
          id = set_.lookupDomain(key, lookup.hash);
          if (id && !inUrlHost(lookup.hit)) id.reset();
          break;
        case LookupKind::kHash:
          id = set_.lookupHash(key, lookup.hash);
          break;
      }
      if (id) report(*id, fieldFor(lookup.field, lookup.attribute_fields, lookup.hit));
      if (delta_ != nullptr && !full_) probeDelta(lookup, key);
    }
  }

  // Reports the delta part hits that the base part's matcher `base` kept in its queue,
  // in the order their lookups were queued. This matcher must be the delta part's, made
  // for the same event after `base` finished it.
  void reportDeltaHits(const EventQueue& base) {
    for (size_t i = 0; i < base.delta_hit_count && !full_; ++i) {
      report(base.delta_hits[i].id, base.delta_hits[i].field);
    }
  }

  // Scans `text` for URL, email and regex indicators and reports their hits ordered by
  // end offset, then by indicator id. With `attribute_fields`, a hit inside a generic
  // field value that points into `text` is reported under that field's name.
  //
  // The URL and email database is scanned only when hasUrlOrEmailMarker(text) (see
  // internal/url_email_marker.h), which holds for every URL and email indicator.
  // Matches of both databases are collected and sorted, so the hits and their order do
  // not depend on which databases ran.
  void scan(std::string_view text, std::string_view field, bool attribute_fields) {
    if (text.empty() || full_) return;
    text_ = text;
    field_ = field;
    attribute_fields_ = attribute_fields;
    scratch_.text_match_count = 0;
    room_ = Event::kMaxHits - std::min(event_.hit_count, Event::kMaxHits);
    const hs_database_t* url_email = set_.urlEmailDatabase();
    if (url_email != nullptr && internal::hasUrlOrEmailMarker(text)) scanDatabase(url_email);
    if (set_.regexDatabase() != nullptr) scanDatabase(set_.regexDatabase());

    const std::span<TextMatch> matches(scratch_.text_matches.data(), scratch_.text_match_count);
    // Insertion sort: a text has a handful of matches at most.
    for (size_t i = 1; i < matches.size(); ++i) {
      const TextMatch match = matches[i];
      size_t j = i;
      for (; j > 0 && (matches[j - 1].end > match.end ||
                       (matches[j - 1].end == match.end && matches[j - 1].id > match.id));
           --j) {
        matches[j] = matches[j - 1];
      }
      matches[j] = match;
    }
    for (const TextMatch& match : matches) {
      if (full_) break;
      const size_t start = matchStart(match.id, match.end);
      report(match.id, fieldFor(field_, attribute_fields_, text_.substr(start, match.end - start)));
    }
    if (lost_matches_) {
      // Every kept match gives a hit, and more were kept than the event has room for, so
      // the event is full and flagged. Only which of the tied matches were kept may
      // differ from the order by end offset and id.
      event_.flags |= kFlagHitsOverflow;
      full_ = true;
    }
  }

 private:
  // Maximum length of a file name that is looked up.
  static constexpr size_t kMaxFilenameBytes = 256;

  // Runs one Hyperscan database over text_ and collects its matches.
  void scanDatabase(const hs_database_t* database) {
    scan_matches_ = 0;
    scan_last_end_ = 0;
    hs_error_t rc = hs_scan(database, text_.data(), static_cast<unsigned>(text_.size()), 0,
                            scratch_.hs, &EventMatcher::onMatch, this);
    if (rc != HS_SUCCESS && rc != HS_SCAN_TERMINATED) {
      scratch_.scan_errors.fetch_add(1, std::memory_order_relaxed);
    }
  }

  // The offset of the first byte of a match of `id` that ends at `end`. A regex match has
  // no known start without HS_FLAG_SOM_LEFTMOST, so its last byte is used.
  size_t matchStart(uint32_t id, size_t end) const {
    if (set_.type(id) == IndicatorType::kRegex) return end > 0 ? end - 1 : 0;
    return end - set_.text(id).size();
  }

  // Keeps a match that will give a hit when it is reported: it passes the boundary rule,
  // its indicator was not reported for this event yet and the event's tenant can match a copy
  // of it. A repeated match of one indicator keeps the lowest end offset.
  static int onMatch(unsigned id, unsigned long long /*from*/, unsigned long long to,
                     unsigned /*flags*/, void* context) {
    auto* self = static_cast<EventMatcher*>(context);
    Scratch::Impl& scratch = self->scratch_;
    const auto end = static_cast<size_t>(to);
    const IndicatorType type = self->set_.type(id);
    const size_t start = self->matchStart(id, end);
    if (type == IndicatorType::kDomain && !domainBoundary(self->text_, start, end)) return 0;
    if (type == IndicatorType::kEmail && !emailBoundary(self->text_, start, end)) return 0;
    for (size_t i = 0; i < self->queue_.seen_count; ++i) {
      if (self->queue_.seen[i] == id) return 0;
    }
    if (self->scoped_ && !self->set_.firstVisible(id, self->event_.tenant)) return 0;
    for (size_t i = 0; i < scratch.text_match_count; ++i) {
      TextMatch& kept = scratch.text_matches[i];
      if (kept.id != id) continue;
      kept.end = std::min(kept.end, static_cast<uint32_t>(end));
      return 0;
    }
    // Hyperscan reports matches in order of end offset. Once this scan kept more matches
    // than the event has room for, a match that ends later sorts after all of them and
    // can never be reported. One match more than the room is kept so that reporting it
    // fails and flags the event as overflowed, as it did when hits were reported at once.
    if (self->scan_matches_ > self->room_ && end > self->scan_last_end_) return 1;
    if (scratch.text_match_count == scratch.text_matches.size()) {
      self->lost_matches_ = true;
      return 0;
    }
    scratch.text_matches[scratch.text_match_count++] = {static_cast<uint32_t>(end), id};
    ++self->scan_matches_;
    self->scan_last_end_ = std::max(self->scan_last_end_, end);
    return 0;
  }

  // Probes `lookup` in the delta set and keeps a hit for reportDeltaHits(). Each kept id
  // is distinct and has a copy the event's tenant matches, so each one reported either
  // adds a hit or overflows the event. The ids after the first kMaxHits + 1 could never
  // be reported and are dropped.
  void probeDelta(const PendingLookup& lookup, std::string_view key) {
    std::optional<uint32_t> id;
    switch (lookup.kind) {
      case LookupKind::kAddress:
        id = delta_->lookupAddress(lookup.address, event_.tenant);
        break;
      // The text lookups hash the key with the delta set's seed first, so kinds that the
      // delta has no table for are skipped before that.
      case LookupKind::kFilename:
        if (delta_->hasFilenames()) id = delta_->lookupFilename(key);
        break;
      case LookupKind::kDomain:
        if (delta_->hasDomains()) id = delta_->lookupDomain(key);
        if (id && !inUrlHost(lookup.hit)) id.reset();
        break;
      case LookupKind::kHash:
        if (delta_->hasHashes()) id = delta_->lookupHash(key);
        break;
    }
    if (!id) return;
    if (delta_->tenantScoped() && !delta_->firstVisible(*id, event_.tenant)) return;
    for (size_t i = 0; i < queue_.delta_hit_count; ++i) {
      if (queue_.delta_hits[i].id == *id) return;
    }
    if (queue_.delta_hit_count == queue_.delta_hits.size()) return;
    queue_.delta_hits[queue_.delta_hit_count++] = {
        *id, fieldFor(lookup.field, lookup.attribute_fields, lookup.hit)};
  }

  // A free queue entry. A full queue is probed first, which keeps the order of hits.
  PendingLookup& push() {
    if (queue_.pending_count == queue_.pending.size()) flush();
    return queue_.pending[queue_.pending_count++];
  }

  // Room for `size` bytes (at most kMaxDomainBytes) in the key buffer. When the buffer is
  // full, the queue is probed first, because its keys live there.
  char* reserveKey(size_t size) {
    if (queue_.keys.size() - queue_.keys_used < size) {
      flush();
      queue_.keys_used = 0;
    }
    char* out = queue_.keys.data() + queue_.keys_used;
    queue_.keys_used += size;
    return out;
  }

  // Copies `text` lower-cased into the key buffer and returns the copy.
  std::string_view storeLowered(std::string_view text) {
    char* out = reserveKey(text.size());
    lowerCopy(text.data(), text.size(), out, nullptr);
    return {out, text.size()};
  }

  // Queues a lookup of `key` (in the key buffer) with hash `hash`, found at `hit`.
  void queueText(LookupKind kind, std::string_view key, uint64_t hash, std::string_view hit,
                 std::string_view field, bool attribute_fields) {
    switch (kind) {
      case LookupKind::kFilename:
        set_.prefetchFilename(hash);
        break;
      case LookupKind::kDomain:
        set_.prefetchDomain(hash);
        break;
      case LookupKind::kHash:
        set_.prefetchHash(hash);
        break;
      case LookupKind::kAddress:
        break;
    }
    PendingLookup& lookup = push();
    lookup.hash = hash;
    lookup.field = field;
    lookup.hit = hit;
    lookup.key_offset = static_cast<uint32_t>(key.data() - queue_.keys.data());
    lookup.key_len = static_cast<uint16_t>(key.size());
    lookup.kind = kind;
    lookup.attribute_fields = attribute_fields;
  }

  // Queues the lookups of one host-name run text[begin, end). A `wide` run has bytes
  // that are not ASCII.
  void queueRun(std::string_view text, size_t begin, size_t end, bool dotted, bool wide,
                bool domains, bool hashes, std::string_view field, bool attribute_fields) {
    if (wide) {
      if (domains && dotted) queueWideRun(text, begin, end, field, attribute_fields);
    } else if (domains && dotted && !isAddressRun(text.substr(begin, end - begin))) {
      queueHostRun(text, begin, end, field, attribute_fields);
    }
    // A byte that is not ASCII is no hex digit, so it ends a hex run as before.
    if (hashes && end - begin >= kMinHashDigits) {
      queueHexRuns(text, begin, end, field, attribute_fields);
    }
  }

  // Splits a run with bytes that are not ASCII into host-name runs. A character that
  // cannot be part of a name (invalid UTF-8, punctuation, spaces, symbols: see
  // internal::breaksHostName()) ends a run, as an ASCII one does. Runs of ASCII bytes only go to
  // queueHostRun() as before; the others are internationalized names (queueIdnRun()).
  void queueWideRun(std::string_view text, size_t begin, size_t end, std::string_view field,
                    bool attribute_fields) {
    size_t sub_begin = begin;
    bool dotted = false;
    bool wide = false;
    auto finish = [&](size_t sub_end) {
      if (sub_end > sub_begin && dotted && !full_) {
        const std::string_view run = text.substr(sub_begin, sub_end - sub_begin);
        if (wide) {
          queueIdnRun(text, sub_begin, sub_end, field, attribute_fields);
        } else if (!isAddressRun(run)) {
          queueHostRun(text, sub_begin, sub_end, field, attribute_fields);
        }
      }
      dotted = false;
      wide = false;
    };
    for (size_t i = begin; i < end;) {
      const auto byte = static_cast<unsigned char>(text[i]);
      if (byte < 0x80) {
        dotted |= byte == '.';
        ++i;
        continue;
      }
      const internal::CodePoint cp = internal::decodeUtf8At(text.substr(0, end), i);
      if (cp.length == 0 || internal::breaksHostName(cp.cp)) {
        finish(i);
        i += std::max<size_t>(cp.length, 1);
        sub_begin = i;
        continue;
      }
      wide = true;
      i += cp.length;
    }
    finish(end);
  }

  // Queues the names of an internationalized host-name run text[begin, end) in their
  // ASCII form, as the builder stores them (internal::toAsciiDomain()). Each label with a
  // byte that is not ASCII becomes "xn--" and its punycode.
  //
  // The names are those that queueHostRun() takes from an ASCII run. A name ends at the
  // run's end or before a '.' that another '.' or the run's end follows, and starts at the
  // run's start or after a '.'. It has two labels or more, no empty label, and a last
  // label that is not all digits. Each lookup keeps the name's bytes in the event, so
  // that fieldFor() finds the field the hit came from.
  void queueIdnRun(std::string_view text, size_t begin, size_t end, std::string_view field,
                   bool attribute_fields) {
    struct Label {
      uint32_t begin, end;              // in text
      uint16_t ascii_begin, ascii_end;  // in `ascii`
      bool usable;                      // not empty, converted and laid out
    };
    std::array<Label, kMaxDomainBytes / 2 + 1> labels;
    size_t count = 0;
    // Labels from the last backwards, so that a run longer than a domain keeps its end.
    size_t label_end = end;
    for (size_t i = end; count < labels.size();) {
      const size_t dot = i == begin ? std::string_view::npos : text.rfind('.', i - 1);
      const size_t label_begin = dot == std::string_view::npos || dot < begin ? begin : dot + 1;
      labels[count++] =
          Label{static_cast<uint32_t>(label_begin), static_cast<uint32_t>(label_end), 0, 0, false};
      if (label_begin == begin) break;
      label_end = label_begin - 1;
      i = label_end;
    }
    std::reverse(labels.begin(), labels.begin() + static_cast<std::ptrdiff_t>(count));
    // The ASCII forms are laid out in `ascii` from its end backwards, each followed by a
    // '.', so that a name is one span. Labels before the first that no longer fits in
    // kMaxDomainBytes stay unusable, like the cut start of a long ASCII run.
    std::array<char, kMaxDomainBytes> ascii;
    std::array<char, kMaxDomainBytes> converted;
    size_t pos = ascii.size();
    size_t first_usable = count;
    for (size_t k = count; k-- > 0;) {
      Label& label = labels[k];
      const std::string_view raw = text.substr(label.begin, label.end - label.begin);
      const size_t n = raw.empty() ? 0 : internal::labelToAscii(raw, converted);
      if (n + 1 > pos) break;
      pos -= n + 1;
      std::memcpy(ascii.data() + pos, converted.data(), n);
      ascii[pos + n] = '.';
      label.ascii_begin = static_cast<uint16_t>(pos);
      label.ascii_end = static_cast<uint16_t>(pos + n);
      label.usable = n != 0;  // empty, or not convertible
      first_usable = k;
    }
    // A label that is empty ends the names before it; the run's end ends one too.
    for (size_t last = count; last-- > first_usable && !full_;) {
      const bool name_end = last + 1 == count || labels[last + 1].begin == labels[last + 1].end;
      if (!name_end || !labels[last].usable) continue;
      const std::string_view tld(ascii.data() + labels[last].ascii_begin,
                                 labels[last].ascii_end - labels[last].ascii_begin);
      if (std::all_of(tld.begin(), tld.end(), absl::ascii_isdigit)) continue;
      // The names ending at `last`, longest first, back to the nearest empty label.
      size_t first = last;
      while (first > first_usable && labels[first - 1].usable) --first;
      for (size_t start = first; start < last && !full_; ++start) {
        const size_t from = labels[start].ascii_begin;
        const size_t len = labels[last].ascii_end - from;
        char* key = reserveKey(len);
        std::memcpy(key, ascii.data() + from, len);
        const std::string_view key_view(key, len);
        queueText(LookupKind::kDomain, key_view, internal::hashText(key_view, set_.textHashSeed()),
                  text.substr(labels[start].begin, labels[last].end - labels[start].begin), field,
                  attribute_fields);
      }
    }
  }

  // True for a run such as "10.0.0.53" that gives no domain candidate: its last label is
  // all digits and its only name end is the run's end, because no '.' follows a '.'
  // (the run ends in a digit, so it has no trailing dot either).
  static bool isAddressRun(std::string_view run) {
    size_t i = run.size();
    while (i > 0 && absl::ascii_isdigit(run[i - 1])) --i;
    if (i == run.size() || i == 0 || run[i - 1] != '.') return false;
    // A byte loop in place of run.find(".."), which calls memchr() once per '.' of the run.
    for (size_t k = 1; k < run.size(); ++k) {
      if (run[k] == '.' && run[k - 1] == '.') return false;
    }
    return true;
  }

  // Queues the domain candidates of one host-name run text[begin, end).
  void queueHostRun(std::string_view text, size_t begin, size_t end, std::string_view field,
                    bool attribute_fields) {
    // A longer run is looked up in its last kMaxDomainBytes only, where every domain that
    // ends at the run's end starts. Its first byte starts a name only after a '.'.
    bool first_starts = true;
    if (end - begin > kMaxDomainBytes) {
      begin = end - kMaxDomainBytes;
      first_starts = text[begin - 1] == '.';
    }
    const size_t len = end - begin;
    char* lowered = reserveKey(len);
    // The run's dots, in order.
    std::array<uint16_t, kMaxDomainBytes> dots;
    const size_t dot_count = lowerCopy(text.data() + begin, len, lowered, dots.data());
    const std::string_view run(lowered, len);
    // Names end at the run's end, and before each '.' that the run's end or another '.'
    // follows. They are queued by end, from the last, and a name that ends before the
    // dot dots[k] only has the dots before it, dots[0, k).
    queueNames(text, begin, run, len, {dots.data(), dot_count}, first_starts, field,
               attribute_fields);
    for (size_t k = dot_count; k-- > 0 && !full_;) {
      const size_t dot = dots[k];
      if (dot + 1 != len && run[dot + 1] != '.') continue;
      queueNames(text, begin, run, dot, {dots.data(), k}, first_starts, field, attribute_fields);
    }
  }

  // Queues the names of `run` (the lower-cased text[begin, begin + run.size())) that end
  // at `stop`. `dots` are the positions of the run's dots before `stop`.
  void queueNames(std::string_view text, size_t begin, std::string_view run, size_t stop,
                  std::span<const uint16_t> dots, bool first_starts, std::string_view field,
                  bool attribute_fields) {
    if (dots.empty()) return;
    const size_t last_dot = dots.back();
    if (last_dot + 1 == stop) return;
    // A name whose last label is all digits is an address, never a domain indicator.
    const std::string_view tld = run.substr(last_dot + 1, stop - last_dot - 1);
    if (std::all_of(tld.begin(), tld.end(), absl::ascii_isdigit)) return;
    // The names start at the run's start (unless it was cut) and after each '.' before
    // last_dot. Their hashes come from one backward pass over run[0, stop), shortest
    // first, and they are queued longest first.
    std::array<uint32_t, kMaxDomainBytes> starts;
    size_t count = 0;
    if (first_starts) starts[count++] = 0;
    for (size_t d = 0; d + 1 < dots.size(); ++d) starts[count++] = dots[d] + 1u;
    if (count == 0) return;
    std::array<uint64_t, kMaxDomainBytes> hashes;
    internal::SuffixHasher hasher(run.substr(0, stop), set_.textHashSeed());
    for (size_t k = count; k-- > 0;) hashes[k] = hasher.suffix(starts[k]);
    for (size_t k = 0; k < count && !full_; ++k) {
      queueText(LookupKind::kDomain, run.substr(starts[k], stop - starts[k]), hashes[k],
                text.substr(begin + starts[k], stop - starts[k]), field, attribute_fields);
    }
  }

  // Queues each run of exactly 32, 40 or 64 hex digits in text[begin, end), a host run,
  // for the hash indicators.
  void queueHexRuns(std::string_view text, size_t begin, size_t end, std::string_view field,
                    bool attribute_fields) {
    size_t i = begin;
    while (i < end && !full_) {
      if (!absl::ascii_isxdigit(text[i])) {
        ++i;
        continue;
      }
      const size_t start = i;
      while (i < end && absl::ascii_isxdigit(text[i])) ++i;
      const size_t len = i - start;
      if (len != 32 && len != 40 && len != 64) continue;
      const std::string_view hit = text.substr(start, len);
      const std::string_view key = storeLowered(hit);
      queueText(LookupKind::kHash, key, internal::hashText(key, set_.textHashSeed()), hit, field,
                attribute_fields);
    }
  }

  // The field a hit at `hit` is reported under: `field`, or with `attribute_fields` the
  // generic field whose value contains the hit.
  // False for a domain name found in a URL field outside the URL's host, such as in its
  // path or query: only the host counts for a domain indicator (br13). Runs only for
  // lookups that found an indicator.
  bool inUrlHost(std::string_view hit) const {
    bool counts = true;
    event_.visitFields([&](const Field& candidate) {
      if (!contains(candidate.value, hit)) return true;
      if (isUrlField(candidate.name)) counts = contains(urlHost(candidate.value), hit);
      return false;
    });
    return counts;
  }

  std::string_view fieldFor(std::string_view field, bool attribute_fields,
                            std::string_view hit) const {
    if (!attribute_fields) return field;
    std::string_view name = field;
    event_.visitFields([&](const Field& candidate) {
      if (!contains(candidate.value, hit)) return true;
      name = candidate.name;
      return false;
    });
    return name;
  }

  // Reports the copies of group head `id` that the event's tenant matches: the copy of every
  // tenant and the tenant's own. Lookups only return heads, so `seen` contains heads, and
  // only heads that gave a hit, which keeps it within kMaxHits entries.
  void report(uint32_t id, std::string_view field) {
    for (size_t i = 0; i < queue_.seen_count; ++i) {
      if (queue_.seen[i] == id) return;
    }
    // Without tenant-owned indicators every group is one indicator of every tenant.
    if (scoped_) {
      reportCopies(id, field);
      return;
    }
    if (addHit(id, field) && queue_.seen_count < queue_.seen.size()) {
      queue_.seen[queue_.seen_count++] = id;
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
    if (added_ != before && queue_.seen_count < queue_.seen.size()) {
      queue_.seen[queue_.seen_count++] = id;
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
  EventQueue& queue_;
  Event& event_;
  const bool scoped_;          // the set has tenant-owned indicators
  const IndicatorSet* delta_;  // probed beside set_ when not null
  // Lookup kinds queued: those that set_ or delta_ have a table for.
  const bool filenames_;
  const bool domains_;
  const bool hashes_;
  // State of scan(): the text, its field and the room for hits when it started.
  std::string_view text_;
  std::string_view field_;
  bool attribute_fields_ = false;
  size_t room_ = 0;
  // State of one database scan in scanDatabase().
  size_t scan_matches_ = 0;
  size_t scan_last_end_ = 0;
  // A reportable match found no room in Scratch::Impl::text_matches.
  bool lost_matches_ = false;
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
  // One Hyperscan scratch serves both databases: the second call grows the first's.
  for (const hs_database_t* database : {set.urlEmailDatabase(), set.regexDatabase()}) {
    if (database == nullptr) continue;
    hs_error_t rc = hs_alloc_scratch(database, &impl_->hs);
    if (rc == HS_NOMEM) throw std::bad_alloc();
    if (rc != HS_SUCCESS) fatal("hs_alloc_scratch failed on a database this module compiled");
  }
}

Scratch::~Scratch() { hs_free_scratch(impl_->hs); }

uint64_t Scratch::scanErrors() const { return impl_->scan_errors.load(std::memory_order_relaxed); }

namespace {

// The first half of matchEvent(): queues the event's lookups, which prefetches their
// table lines. A queue that fills up is probed early, so hits may already be added.
void queueLookups(EventMatcher& matcher, const Event& event) {
  // Addresses, file names, then the host names and hex runs of the message and of the
  // other field values are queued in the order their hits are reported, and probed once
  // all their table lines were prefetched.
  if (event.src_ip) matcher.queueAddress(*event.src_ip, "source.ip");
  if (event.dst_ip) matcher.queueAddress(*event.dst_ip, "destination.ip");
  // Every generic field, the overflow area included; a visitor returns false to stop once
  // the event holds no more hits.
  event.visitFields([&](const Field& field) {
    if (matcher.full()) return false;
    if (!mayBeAddress(field.value)) return true;
    if (std::optional<IpAddr> addr = parseIp(field.value)) matcher.queueAddress(*addr, field.name);
    return true;
  });
  if (matcher.wantsFilenames()) {
    if (!event.app.empty()) matcher.queueFilename(event.app, "process.name");
    event.visitFields([&](const Field& field) {
      if (matcher.full()) return false;
      if (isFileField(field.name)) matcher.queueFilename(field.value, field.name);
      return true;
    });
  }
  if (matcher.wantsTokens()) {
    matcher.queueTokens(event.message, "message", /*attribute_fields=*/true);
    event.visitFields([&](const Field& field) {
      if (matcher.full()) return false;
      if (contains(event.message, field.value)) return true;
      matcher.queueTokens(field.value, field.name, /*attribute_fields=*/false);
      return true;
    });
  }
}

// Runs the Hyperscan databases of `set` over the event's texts. Returns the number of
// hits that `matcher` added, lookups included.
size_t scanTexts(const IndicatorSet& set, EventMatcher& matcher, const Event& event) {
  if (set.urlEmailDatabase() == nullptr && set.regexDatabase() == nullptr) {
    return matcher.added();
  }
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

// The second half of matchEvent(): probes the queued lookups, then runs the Hyperscan
// databases. Returns the number of hits added by both halves.
size_t finishEvent(const IndicatorSet& set, EventMatcher& matcher, const Event& event) {
  matcher.flush();
  return scanTexts(set, matcher, event);
}

// The delta part of matchEventsWithDelta(): its set and scratch, and where the delta
// hits of each event start.
struct DeltaPass {
  const IndicatorSet* set = nullptr;
  Scratch::Impl* scratch = nullptr;
  std::span<size_t> first_hits;
};

// Adds the delta part's hits to an event that `base` has finished: the lookup hits that
// `base` kept in its queue, then the delta part's own Hyperscan scans. These are the hits,
// in order, that a separate matchEvent() of the delta part adds. Returns their number.
size_t finishDelta(const DeltaPass& delta, const EventMatcher& base, Event& event) {
  // A full base matcher overflowed the event (and flagged it), so no delta hit fits.
  if (base.full()) return 0;
  EventMatcher matcher(*delta.set, *delta.scratch, delta.scratch->queues[0], event);
  matcher.reportDeltaHits(base.queue());
  return scanTexts(*delta.set, matcher, event);
}

// Starts loading the lines of the Event struct that matchEvent() reads.
void prefetchEventLines(const Event& event) {
  // matchEvent() reads the tenant, app, message and addresses near the start of the
  // struct, field_count after the 3 KB field table, and hit_count and the overflow list
  // head after the hit table. Only the addresses of those members are taken here.
  __builtin_prefetch(&event.tenant);
  __builtin_prefetch(&event.app);
  __builtin_prefetch(&event.message);
  __builtin_prefetch(&event.dst_ip);
  __builtin_prefetch(&event.field_count);
  __builtin_prefetch(&event.hit_count);
  __builtin_prefetch(&event.arena + 1);
}

// Starts loading the first bytes of the message and the address table lines of the
// source and destination addresses. It reads the event's message pointer and addresses,
// so it runs about one event after prefetchEventLines() of the same event.
void prefetchEventKeys(const IndicatorSet& set, const Event& event) {
  const std::string_view message = event.message;
  const size_t bytes = std::min(message.size(), kPrefetchedMessageBytes);
  for (size_t offset = 0; offset < bytes; offset += 64) __builtin_prefetch(message.data() + offset);
  if (bytes != 0) __builtin_prefetch(message.data() + bytes - 1);
  if (event.src_ip) set.prefetchAddress(*event.src_ip);
  if (event.dst_ip) set.prefetchAddress(*event.dst_ip);
}

Scratch::Impl& checkedImpl(const IndicatorSet& set, Scratch& scratch, const char* caller) {
  Scratch::Impl& impl = scratch.impl();
  if (impl.set != &set) {
    std::fprintf(stderr,
                 "vigil intel matcher: %s got a Scratch created for another "
                 "IndicatorSet\n",
                 caller);
    std::abort();
  }
  return impl;
}

// Matches `events` against `set`, and against the delta part when `delta.set` is set.
// See matchEvents() for the pipeline.
size_t matchPipelined(const IndicatorSet& set, Scratch::Impl& impl, std::span<Event* const> events,
                      const DeltaPass& delta) {
  const size_t count = events.size();
  if (count == 0) return 0;
  // A software pipeline over the events. Step i prefetches the Event lines of event
  // i + 3 and the message and addresses of event i + 2, whose lines were requested one
  // step earlier. It then queues the lookups of event i + 1 and probes the lookups and
  // runs the scans of event i, whose table lines had a whole step to arrive. Two
  // EventQueues alternate between the queued event and the probed one.
  for (size_t i = 0; i < std::min<size_t>(count, 3); ++i) prefetchEventLines(*events[i]);
  if (count > 1) prefetchEventKeys(set, *events[1]);
  std::array<std::optional<EventMatcher>, 2> matchers;
  matchers[0].emplace(set, impl, impl.queues[0], *events[0], delta.set);
  queueLookups(*matchers[0], *events[0]);
  size_t added = 0;
  for (size_t i = 0; i < count; ++i) {
    if (i + 3 < count) prefetchEventLines(*events[i + 3]);
    if (i + 2 < count) prefetchEventKeys(set, *events[i + 2]);
    if (i + 1 < count) {
      const size_t next = (i + 1) % 2;
      matchers[next].emplace(set, impl, impl.queues[next], *events[i + 1], delta.set);
      queueLookups(*matchers[next], *events[i + 1]);
    }
    EventMatcher& matcher = *matchers[i % 2];
    added += finishEvent(set, matcher, *events[i]);
    if (delta.set != nullptr) {
      delta.first_hits[i] = events[i]->hit_count;
      added += finishDelta(delta, matcher, *events[i]);
    }
  }
  return added;
}

}  // namespace

size_t matchEvent(const IndicatorSet& set, Scratch& scratch, Event& event) {
  Scratch::Impl& impl = checkedImpl(set, scratch, "matchEvent()");
  EventMatcher matcher(set, impl, impl.queues[0], event);
  queueLookups(matcher, event);
  return finishEvent(set, matcher, event);
}

size_t matchEvents(const IndicatorSet& set, Scratch& scratch, std::span<Event* const> events) {
  Scratch::Impl& impl = checkedImpl(set, scratch, "matchEvents()");
  return matchPipelined(set, impl, events, DeltaPass{});
}

size_t matchEventsWithDelta(const IndicatorSet& set, Scratch& scratch, const IndicatorSet& delta,
                            Scratch& delta_scratch, std::span<Event* const> events,
                            std::span<size_t> delta_first_hits) {
  Scratch::Impl& impl = checkedImpl(set, scratch, "matchEventsWithDelta()");
  Scratch::Impl& delta_impl = checkedImpl(delta, delta_scratch, "matchEventsWithDelta()");
  if (delta_first_hits.size() < events.size()) {
    fatal("matchEventsWithDelta() got fewer delta_first_hits entries than events");
  }
  return matchPipelined(set, impl, events, DeltaPass{&delta, &delta_impl, delta_first_hits});
}

}  // namespace vigil::intel
