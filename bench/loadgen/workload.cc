#include "bench/loadgen/workload.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include <nlohmann/json.hpp>

namespace vigil::bench {
namespace {

// xoshiro256** seeded through splitmix64: the same stream on every platform, unlike the
// standard distributions, whose algorithms the library chooses.
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (uint64_t& word : s_) {
      seed += 0x9e3779b97f4a7c15ULL;
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      word = z ^ (z >> 31);
    }
  }
  uint64_t next() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, n); n > 0. The modulo bias is below 2^-32 for the n used here.
  uint64_t below(uint64_t n) { return next() % n; }
  // Uniform in [lo, hi].
  uint64_t range(uint64_t lo, uint64_t hi) { return lo + below(hi - lo + 1); }
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

// Address ranges. Background and attack ranges never overlap the indicator ranges, so an
// event carries an indicator only where the generator put one.
constexpr uint32_t kInternal = 0x0A000000;     // 10.0.0.0/8: hosts and clients
constexpr uint32_t kExternal = 0x64400000;     // 100.64.0.0/10: benign outside peers
constexpr uint32_t kBruteForceNet = 0xAC100000;  // 172.16.0.0/13: one per brute-force burst
constexpr uint32_t kScannerNet = 0xAC180000;      // 172.24.0.0/13: one per port scan
constexpr uint32_t kIndicatorA = 0x2D000000;   // 45.0.0.0/8 and 185.0.0.0/8: indicators
constexpr uint32_t kIndicatorB = 0xB9000000;

std::string ipText(uint32_t ip) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255,
                ip & 255);
  return buf;
}

// Civil date from days since 1970-01-01 (proleptic Gregorian).
void civilFromDays(int64_t z, int& year, unsigned& month, unsigned& day) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  day = doy - (153 * mp + 2) / 5 + 1;
  month = mp < 10 ? mp + 3 : mp - 9;
  year = static_cast<int>(yoe) + static_cast<int>(era) * 400 + (month <= 2);
}

struct Clock {
  int year;
  unsigned month, day, hour, minute, second, millis;
};

Clock split(int64_t ns) {
  int64_t secs = ns / 1'000'000'000;
  Clock c{};
  c.millis = static_cast<unsigned>((ns / 1'000'000) % 1000);
  int64_t days = secs / 86400;
  int64_t rem = secs % 86400;
  civilFromDays(days, c.year, c.month, c.day);
  c.hour = static_cast<unsigned>(rem / 3600);
  c.minute = static_cast<unsigned>(rem / 60 % 60);
  c.second = static_cast<unsigned>(rem % 60);
  return c;
}

std::string rfc3164Time(int64_t ns) {
  static const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  Clock c = split(ns);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s %2u %02u:%02u:%02u", kMonths[c.month - 1], c.day, c.hour,
                c.minute, c.second);
  return buf;
}

std::string rfc3339Time(int64_t ns) {
  Clock c = split(ns);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02u:%02u:%02u.%03uZ", c.year, c.month, c.day,
                c.hour, c.minute, c.second, c.millis);
  return buf;
}

// The event time the parser reads back: RFC 3164 keeps whole seconds, the rest millis.
int64_t secondsOnly(int64_t ns) { return ns - ns % 1'000'000'000; }
int64_t millisOnly(int64_t ns) { return ns - ns % 1'000'000; }

// Rule ids, fixed so that ground truth and alerts name the same rules in every run.
std::string ruleId(unsigned n) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "b3e7c000-0000-4000-8000-%012u", n);
  return buf;
}
enum RuleNo : unsigned {
  kSshFailed = 1,
  kBruteForce = 2,
  kFwDeny = 3,
  kPortScan = 4,
  kDnsIoc = 5,
  kBeacon = 6,
  kWinLogon = 7,
  kWinPriv = 8,
  kLogonPriv = 9,
  kIntelHit = 10,
  kFillerBase = 100,
};

using Kind = EventKind;
using Facts = EventFacts;

struct Indicators {
  std::vector<uint32_t> ips;
  std::vector<std::string> domains;
};

// One attack event waiting for its time.
struct Pending {
  int64_t time_ns;
  uint64_t order;  // tie-break: keeps an attack's own events in their planned order
  Kind kind;
  uint32_t tenant;
  uint32_t a;  // address or user number
  uint32_t b;  // port, domain index, ...
  bool operator>(const Pending& o) const {
    return time_ns != o.time_ns ? time_ns > o.time_ns : order > o.order;
  }
};

class Generator {
 public:
  Generator(const WorkloadOptions& o, bool with_intel)
      : o_(o), rng_(o.seed), with_intel_(with_intel) {}
  // A generator that draws from `rng` and uses indicators made by another generator.
  Generator(const WorkloadOptions& o, bool with_intel, const Rng& rng,
            const Indicators& indicators)
      : o_(o), rng_(rng), with_intel_(with_intel), ind_(&indicators) {}

  void makeIndicators(uint64_t ips, uint64_t domains) {
    std::unordered_set<uint32_t> seen_ip;
    seen_ip.reserve(ips * 2);
    while (own_.ips.size() < ips) {
      uint32_t base = rng_.below(2) == 0 ? kIndicatorA : kIndicatorB;
      uint32_t ip = base | static_cast<uint32_t>(rng_.below(1u << 24));
      if ((ip & 255) == 0 || (ip & 255) == 255) continue;
      if (seen_ip.insert(ip).second) own_.ips.push_back(ip);
    }
    static const char* kTlds[] = {"top", "xyz", "icu", "click", "shop", "cyou", "monster"};
    static const char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    std::unordered_set<std::string> seen;
    seen.reserve(domains * 2);
    while (own_.domains.size() < domains) {
      std::string d;
      size_t len = rng_.range(7, 14);
      for (size_t i = 0; i < len; ++i) d.push_back(kAlphabet[rng_.below(i == 0 ? 26 : 36)]);
      if (rng_.below(4) == 0) d = "cdn-" + d;
      d += '.';
      d += kTlds[rng_.below(std::size(kTlds))];
      if (seen.insert(d).second) own_.domains.push_back(std::move(d));
    }
  }

  const std::vector<uint32_t>& iocIps() const { return ind_->ips; }
  const std::vector<std::string>& iocDomains() const { return ind_->domains; }
  const Indicators& indicators() const { return *ind_; }
  const Rng& rng() const { return rng_; }

  // Plans every attack event, then writes the background around them in time order.
  // With `line_ends`, also records the offset just past each line.
  void run(std::string& out, std::vector<Facts>& facts, GroundTruth& truth, bool pcap,
           std::string& pcap_out, std::vector<size_t>* line_ends = nullptr);

 private:
  std::string host(const char* role, uint32_t tenant, uint32_t n) const {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s%02u.t%02u.bench", role, n, tenant);
    return buf;
  }
  static std::string tenantName(uint32_t tenant) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "t%02u", tenant);
    return buf;
  }
  uint32_t internalIp() { return kInternal | static_cast<uint32_t>(rng_.range(1, (1u << 24) - 2)); }
  uint32_t externalIp() { return kExternal | static_cast<uint32_t>(rng_.range(1, (1u << 22) - 2)); }
  std::string user(uint32_t n) const { return "user" + std::to_string(n); }

  void plan(std::vector<Pending>& pending, uint64_t span_ns, GroundTruth& truth);
  void emitAttack(const Pending& p, std::string& line, Facts& f);
  void emitBackground(int64_t t, std::string& line, Facts& f);

  void sshLine(std::string& line, int64_t t, uint32_t tenant, std::string_view msg) {
    line = "<38>";
    line += rfc3164Time(t);
    line += ' ';
    line += host("bastion", tenant, static_cast<uint32_t>(rng_.below(4)));
    line += " sshd[";
    line += std::to_string(rng_.range(1000, 65000));
    line += "]: ";
    line += msg;
  }
  void cefLine(std::string& line, int64_t t, uint32_t tenant, bool deny, uint32_t src,
               uint32_t dst, uint32_t dport) {
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "<134>1 %s %s pfw %u - - CEF:0|Vigil Bench|PerimeterFW|3.1|%s|%s|%d|"
                  "src=%s spt=%u dst=%s dpt=%u proto=%s act=%s cs1Label=rule cs1=%s",
                  rfc3339Time(t).c_str(), host("fw", tenant, 1).c_str(),
                  static_cast<unsigned>(rng_.range(100, 9999)), deny ? "fw-deny" : "fw-allow",
                  deny ? "Connection denied" : "Connection allowed", deny ? 5 : 2,
                  ipText(src).c_str(), static_cast<unsigned>(rng_.range(1024, 65535)),
                  ipText(dst).c_str(), dport, rng_.below(5) == 0 ? "UDP" : "TCP",
                  deny ? "deny" : "allow", deny ? "inbound-default-deny" : "outbound-web");
    line = buf;
  }
  void dnsLine(std::string& line, int64_t t, uint32_t tenant, uint32_t client,
               const std::string& query) {
    static const char* kTypes[] = {"A", "AAAA", "A", "HTTPS", "MX", "TXT"};
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "{\"@timestamp\":\"%s\",\"org\":\"%s\",\"type\":\"dns_query\","
                  "\"resolver\":\"%s\",\"src_ip\":\"%s\",\"src_port\":%u,\"query\":\"%s\","
                  "\"qtype\":\"%s\",\"rcode\":\"NOERROR\",\"answers\":%u}",
                  rfc3339Time(t).c_str(), tenantName(tenant).c_str(),
                  host("dns", tenant, 1).c_str(), ipText(client).c_str(),
                  static_cast<unsigned>(rng_.range(1024, 65535)), query.c_str(),
                  kTypes[rng_.below(std::size(kTypes))], static_cast<unsigned>(rng_.range(0, 4)));
    line = buf;
  }
  void windowsLine(std::string& line, int64_t t, uint32_t tenant, unsigned event_id,
                   const std::string& account, uint32_t ip) {
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "<86>1 %s %s Microsoft-Windows-Security-Auditing %u %u - "
                  "{\"EventID\":%u,\"Channel\":\"Security\",\"TargetUserName\":\"%s\","
                  "\"TargetDomainName\":\"CORP%02u\",\"LogonType\":%u,\"IpAddress\":\"%s\","
                  "\"ProcessName\":\"C:\\\\Windows\\\\System32\\\\lsass.exe\"}",
                  rfc3339Time(t).c_str(), host("dc", tenant, 1).c_str(),
                  static_cast<unsigned>(rng_.range(400, 900)), event_id, event_id,
                  account.c_str(), tenant, event_id == 4672 ? 0u : (rng_.below(3) == 0 ? 10u : 3u),
                  ipText(ip).c_str());
    line = buf;
  }

  const WorkloadOptions& o_;
  Rng rng_;
  bool with_intel_;
  Indicators own_;
  const Indicators* ind_ = &own_;
  // Background sources that feed a counting rule are capped so that they never reach a
  // threshold by chance in any peer's window semantics (SEC counts in wall time).
  std::unordered_map<uint32_t, uint8_t> ssh_fail_count_, deny_count_, dns_ioc_count_;
  uint32_t next_admin_ = 0;
};

void Generator::plan(std::vector<Pending>& pending, uint64_t span_ns, GroundTruth& truth) {
  const double millions = static_cast<double>(o_.events) / 1e6;
  auto count = [&](double per_million) {
    return static_cast<uint64_t>(per_million * millions + 0.5);
  };
  // Each attack starts early enough that its last event still falls inside the file,
  // when the file spans long enough for that.
  auto start = [&](int64_t longest_ns) -> int64_t {
    const uint64_t latest = span_ns > static_cast<uint64_t>(longest_ns)
                                ? span_ns - static_cast<uint64_t>(longest_ns)
                                : 1;
    return o_.start_ns + static_cast<int64_t>(rng_.below(latest));
  };
  uint64_t order = 0;
  const uint64_t bursts = count(o_.bruteforce_per_million);
  for (uint64_t i = 0; i < bursts; ++i) {
    // 5 to 9 failures within 40 s: exactly one alert for a 5-in-60-s rule in any window
    // semantics, because the rest after the first alert never reach 5 again.
    int64_t t = start(45'000'000'000LL);
    uint32_t tenant = static_cast<uint32_t>(rng_.below(o_.tenants));
    uint32_t ip = kBruteForceNet | static_cast<uint32_t>(i & 0x7FFFF);
    uint64_t tries = rng_.range(5, 9);
    for (uint64_t k = 0; k < tries; ++k) {
      pending.push_back({t, order++, Kind::kSshFail, tenant, ip, 0});
      t += static_cast<int64_t>(rng_.range(500, 5000)) * 1'000'000;
    }
  }
  truth.bruteforce_bursts = bursts;
  if (o_.workload == "W1") return;  // W1 stays RFC 3164 and RFC 5424 text
  const uint64_t scans = count(o_.scans_per_million);
  for (uint64_t i = 0; i < scans; ++i) {
    int64_t t = start(16'000'000'000LL);
    uint32_t tenant = static_cast<uint32_t>(rng_.below(o_.tenants));
    uint32_t ip = kScannerNet | static_cast<uint32_t>(i & 0x7FFFF);
    uint64_t ports = rng_.range(20, 39);
    uint32_t port = static_cast<uint32_t>(rng_.range(1, 1000));
    for (uint64_t k = 0; k < ports; ++k) {
      pending.push_back({t, order++, Kind::kFwDeny, tenant, ip, port + static_cast<uint32_t>(k)});
      t += static_cast<int64_t>(rng_.range(20, 400)) * 1'000'000;
    }
  }
  truth.scans = scans;
  const uint64_t beacons = ind_->domains.empty() ? 0 : count(o_.beacons_per_million);
  for (uint64_t i = 0; i < beacons; ++i) {
    int64_t t = start(490'000'000'000LL);
    uint32_t tenant = static_cast<uint32_t>(rng_.below(o_.tenants));
    uint32_t client = internalIp();
    uint32_t domain = static_cast<uint32_t>(rng_.below(ind_->domains.size()));
    uint64_t calls = rng_.range(10, 14);
    for (uint64_t k = 0; k < calls; ++k) {
      pending.push_back({t, order++, Kind::kDnsIoc, tenant, client, domain});
      t += static_cast<int64_t>(rng_.range(20'000, 35'000)) * 1'000'000;
    }
  }
  truth.beacons = beacons;
  const uint64_t privesc = count(o_.privesc_per_million);
  for (uint64_t i = 0; i < privesc; ++i) {
    int64_t t = start(90'000'000'000LL);
    uint32_t tenant = static_cast<uint32_t>(rng_.below(o_.tenants));
    uint32_t admin = next_admin_++;
    pending.push_back({t, order++, Kind::kLogon, tenant, admin, 0});
    t += static_cast<int64_t>(rng_.range(2'000, 90'000)) * 1'000'000;
    pending.push_back({t, order++, Kind::kPriv, tenant, admin, 0});
  }
  truth.privesc = privesc;
}

void Generator::emitAttack(const Pending& p, std::string& line, Facts& f) {
  f.tenant = p.tenant;
  f.kind = p.kind;
  switch (p.kind) {
    case Kind::kSshFail: {
      static const char* kUsers[] = {"root", "admin", "oracle", "ubuntu", "test", "git"};
      const char* u = kUsers[rng_.below(std::size(kUsers))];
      bool invalid = std::strcmp(u, "root") != 0;
      std::string msg = std::string("Failed password for ") + (invalid ? "invalid user " : "") +
                        u + " from " + ipText(p.a) + " port " +
                        std::to_string(rng_.range(30000, 65000)) + " ssh2";
      sshLine(line, p.time_ns, p.tenant, msg);
      f.key = p.a;
      f.time_ns = secondsOnly(p.time_ns);
      break;
    }
    case Kind::kFwDeny:
      cefLine(line, p.time_ns, p.tenant, true, p.a, internalIp(), p.b);
      f.key = p.a;
      f.time_ns = millisOnly(p.time_ns);
      break;
    case Kind::kDnsIoc:
      dnsLine(line, p.time_ns, p.tenant, p.a, ind_->domains[p.b]);
      f.key = p.a;
      f.time_ns = millisOnly(p.time_ns);
      f.ioc = with_intel_;
      break;
    case Kind::kLogon:
    case Kind::kPriv:
      windowsLine(line, p.time_ns, p.tenant, p.kind == Kind::kLogon ? 4624 : 4672,
                  "adm-" + std::to_string(p.a), internalIp());
      f.key = p.a | (1ULL << 40);  // attack accounts never share a number with users
      f.time_ns = millisOnly(p.time_ns);
      break;
    case Kind::kOther:
      break;
  }
}

void Generator::emitBackground(int64_t t, std::string& line, Facts& f) {
  const bool w1 = o_.workload == "W1";
  const uint32_t tenant = static_cast<uint32_t>(rng_.below(o_.tenants));
  f.tenant = tenant;
  // An indicator event: a connection to an indicator address or a lookup of a domain.
  if (with_intel_ && rng_.unit() < o_.ioc_fraction) {
    f.ioc = true;
    if (rng_.below(2) == 0) {
      uint32_t dst = ind_->ips[rng_.below(ind_->ips.size())];
      cefLine(line, t, tenant, false, internalIp(), dst, rng_.below(2) == 0 ? 443 : 8080);
      f.time_ns = millisOnly(t);
      return;
    }
    uint32_t client;
    do {
      client = internalIp();
    } while (dns_ioc_count_[client] >= 3);
    ++dns_ioc_count_[client];
    dnsLine(line, t, tenant, client, ind_->domains[rng_.below(ind_->domains.size())]);
    f.kind = Kind::kDnsIoc;
    f.key = client;
    f.time_ns = millisOnly(t);
    return;
  }
  // Mix: W1 is RFC 3164 and RFC 5424 text only; the others add CEF and JSON.
  uint64_t roll = rng_.below(100);
  int type;  // 0 ssh, 1 firewall, 2 web, 3 dns, 4 windows
  if (w1) {
    type = roll < 50 ? 0 : 2;
  } else {
    type = roll < 30 ? 0 : roll < 55 ? 1 : roll < 75 ? 2 : roll < 90 ? 3 : 4;
  }
  switch (type) {
    case 0: {
      uint64_t r = rng_.below(100);
      uint32_t ip;
      std::string msg;
      if (r < 25) {
        do {
          ip = internalIp();
        } while (ssh_fail_count_[ip] >= 3);
        ++ssh_fail_count_[ip];
        msg = "Failed password for " + user(static_cast<uint32_t>(rng_.below(5000))) + " from " +
              ipText(ip) + " port " + std::to_string(rng_.range(30000, 65000)) + " ssh2";
        f.kind = Kind::kSshFail;
        f.key = ip;
      } else if (r < 75) {
        ip = internalIp();
        msg = "Accepted publickey for " + user(static_cast<uint32_t>(rng_.below(5000))) +
              " from " + ipText(ip) + " port " + std::to_string(rng_.range(30000, 65000)) +
              " ssh2: ED25519 SHA256:" + std::to_string(rng_.next() % 100000000000ULL);
      } else if (r < 90) {
        ip = internalIp();
        msg = "Disconnected from user " + user(static_cast<uint32_t>(rng_.below(5000))) + " " +
              ipText(ip) + " port " + std::to_string(rng_.range(30000, 65000));
      } else {
        ip = internalIp();
        msg = "Connection closed by " + ipText(ip) + " port " +
              std::to_string(rng_.range(30000, 65000)) + " [preauth]";
      }
      sshLine(line, t, tenant, msg);
      f.time_ns = secondsOnly(t);
      return;
    }
    case 1: {
      bool deny = rng_.below(10) < 3;
      if (deny) {
        uint32_t src;
        do {
          src = externalIp();
        } while (deny_count_[src] >= 5);
        ++deny_count_[src];
        cefLine(line, t, tenant, true, src, internalIp(),
                static_cast<uint32_t>(rng_.range(1, 1024)));
        f.kind = Kind::kFwDeny;
        f.key = src;
      } else {
        cefLine(line, t, tenant, false, internalIp(), externalIp(),
                rng_.below(3) == 0 ? 80 : 443);
      }
      f.time_ns = millisOnly(t);
      return;
    }
    case 2: {
      static const char* kPaths[] = {"/", "/index.html", "/api/v1/items", "/login",
                                     "/static/app.js", "/img/logo.png", "/search?q=report"};
      static const char* kAgents[] = {
          "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0",
          "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
          "curl/7.88.1", "python-requests/2.31.0"};
      static const unsigned kStatus[] = {200, 200, 200, 200, 304, 301, 404, 500};
      char buf[512];
      std::snprintf(buf, sizeof buf,
                    "<190>1 %s %s nginx %u access - %s - - \"%s %s HTTP/1.1\" %u %u \"-\" \"%s\"",
                    rfc3339Time(t).c_str(),
                    host("web", tenant, static_cast<uint32_t>(rng_.below(6))).c_str(),
                    static_cast<unsigned>(rng_.range(100, 9999)), ipText(externalIp()).c_str(),
                    rng_.below(5) == 0 ? "POST" : "GET", kPaths[rng_.below(std::size(kPaths))],
                    kStatus[rng_.below(std::size(kStatus))],
                    static_cast<unsigned>(rng_.range(200, 90000)),
                    kAgents[rng_.below(std::size(kAgents))]);
      line = buf;
      f.time_ns = millisOnly(t);
      return;
    }
    case 3: {
      static const char* kPrefixes[] = {"www", "api", "cdn", "mail", "login", "static"};
      static const char* kSuffixes[] = {"example", "example.com", "example.net", "example.org"};
      std::string q = std::string(kPrefixes[rng_.below(std::size(kPrefixes))]) + ".site" +
                      std::to_string(rng_.below(20000)) + "." +
                      kSuffixes[rng_.below(std::size(kSuffixes))];
      dnsLine(line, t, tenant, internalIp(), q);
      f.time_ns = millisOnly(t);
      return;
    }
    default: {
      uint64_t r = rng_.below(10);
      unsigned id = r < 8 ? 4624 : r < 9 ? 4634 : 4672;
      // Special privileges in the background go to service accounts that never log on
      // with 4624 here, so only the planned sequences complete logon -> privilege.
      uint32_t n = static_cast<uint32_t>(rng_.below(5000));
      std::string account = id == 4672 ? "svc-" + std::to_string(n % 200) : user(n);
      windowsLine(line, t, tenant, id, account, internalIp());
      if (id == 4624) {
        f.kind = Kind::kLogon;
        f.key = n;
      }
      f.time_ns = millisOnly(t);
      return;
    }
  }
}

// Classic pcap, Ethernet + IPv4 + UDP to port 514, one datagram per line.
void appendPcapHeader(std::string& out) {
  auto put32 = [&](uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); };
  auto put16 = [&](uint16_t v) { out.append(reinterpret_cast<const char*>(&v), 2); };
  put32(0xa1b2c3d4);
  put16(2);
  put16(4);
  put32(0);
  put32(0);
  put32(65535);
  put32(1);  // LINKTYPE_ETHERNET
}

void appendPcapFrame(std::string& out, std::string_view payload, int64_t t_ns) {
  const size_t udp_len = 8 + payload.size();
  const size_t ip_len = 20 + udp_len;
  const size_t frame_len = 14 + ip_len;
  auto put32 = [&](uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); };
  put32(static_cast<uint32_t>(t_ns / 1'000'000'000));
  put32(static_cast<uint32_t>(t_ns / 1000 % 1'000'000));
  put32(static_cast<uint32_t>(frame_len));
  put32(static_cast<uint32_t>(frame_len));
  const unsigned char eth[14] = {0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00};
  out.append(reinterpret_cast<const char*>(eth), 14);
  unsigned char ip[20] = {0x45, 0, static_cast<unsigned char>(ip_len >> 8),
                          static_cast<unsigned char>(ip_len & 255), 0, 0, 0x40, 0, 64, 17, 0, 0,
                          192, 0, 2, 10, 192, 0, 2, 1};
  uint32_t sum = 0;
  for (int i = 0; i < 20; i += 2) sum += (ip[i] << 8) | ip[i + 1];
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  const auto check = static_cast<uint16_t>(~sum);
  ip[10] = static_cast<unsigned char>(check >> 8);
  ip[11] = static_cast<unsigned char>(check & 255);
  out.append(reinterpret_cast<const char*>(ip), 20);
  const unsigned char udp[8] = {0x9c, 0x40, 0x02, 0x02, static_cast<unsigned char>(udp_len >> 8),
                                static_cast<unsigned char>(udp_len & 255), 0, 0};
  out.append(reinterpret_cast<const char*>(udp), 8);
  out.append(payload);
}

void Generator::run(std::string& out, std::vector<Facts>& facts, GroundTruth& truth, bool pcap,
                    std::string& pcap_out, std::vector<size_t>* line_ends) {
  const uint64_t span_ns =
      static_cast<uint64_t>(static_cast<double>(o_.events) / o_.event_rate * 1e9);
  std::vector<Pending> pending;
  plan(pending, span_ns, truth);
  if (pending.size() > o_.events) {
    // A file too small for the planned attacks gets background events only.
    pending.clear();
    truth.bruteforce_bursts = truth.scans = truth.beacons = truth.privesc = 0;
  }
  std::sort(pending.begin(), pending.end(),
            [](const Pending& a, const Pending& b) { return b > a; });
  const uint64_t background = o_.events - pending.size();
  const double step = background > 0 ? static_cast<double>(span_ns) / static_cast<double>(background) : 0;
  size_t next = 0;
  std::string line;
  if (pcap) appendPcapHeader(pcap_out);
  facts.reserve(o_.events);
  auto emit = [&](int64_t t, Facts& f) {
    out += line;
    out += '\n';
    if (line_ends != nullptr) line_ends->push_back(out.size());
    if (pcap) appendPcapFrame(pcap_out, line, t);
    if (line.starts_with("<38>")) {
      f.format = LineFormat::kRfc3164;
    } else if (line.starts_with("<134>1 ")) {
      f.format = LineFormat::kCef;
    } else if (line.starts_with("<86>1 ")) {
      f.format = LineFormat::kRfc5424Json;
    } else if (line.starts_with("{")) {
      f.format = LineFormat::kJson;
    } else {
      f.format = LineFormat::kRfc5424;
    }
    facts.push_back(f);
  };
  for (uint64_t i = 0; i < background; ++i) {
    const int64_t t = o_.start_ns + static_cast<int64_t>(static_cast<double>(i) * step);
    while (next < pending.size() && pending[next].time_ns <= t) {
      Facts f;
      emitAttack(pending[next], line, f);
      emit(pending[next].time_ns, f);
      ++next;
    }
    Facts f;
    emitBackground(t, line, f);
    emit(t, f);
  }
  for (; next < pending.size(); ++next) {
    Facts f;
    emitAttack(pending[next], line, f);
    emit(pending[next].time_ns, f);
  }
}

// Adds the line, indicator and SSH failure counts of `facts` to `truth`.
void tallyLines(std::span<const Facts> facts, GroundTruth& truth) {
  for (const Facts& f : facts) {
    switch (f.format) {
      case LineFormat::kRfc3164: ++truth.lines_rfc3164; break;
      case LineFormat::kCef: ++truth.lines_cef; break;
      case LineFormat::kRfc5424Json:
        ++truth.lines_rfc5424;
        ++truth.lines_json;
        break;
      case LineFormat::kJson: ++truth.lines_json; break;
      case LineFormat::kRfc5424: ++truth.lines_rfc5424; break;
    }
    if (f.ioc) ++truth.ioc_events;
    if (f.kind == Kind::kSshFail) ++truth.ssh_failed;
  }
  truth.events += facts.size();
}

// Sigma event_count over the written events, as docs/rules.md defines it: a sliding
// window per (tenant, key) with both edges included; reaching the count raises one
// alert and empties the window.
uint64_t simulateEventCount(std::span<const Facts> facts, Kind kind, int64_t span_ns,
                            size_t threshold) {
  std::unordered_map<uint64_t, std::deque<int64_t>> windows;
  uint64_t alerts = 0;
  for (const Facts& f : facts) {
    if (f.kind != kind) continue;
    std::deque<int64_t>& w = windows[(f.key << 8) ^ f.tenant];
    while (!w.empty() && w.front() < f.time_ns - span_ns) w.pop_front();
    w.push_back(f.time_ns);
    if (w.size() >= threshold) {
      ++alerts;
      w.clear();
    }
  }
  return alerts;
}

// temporal_ordered over two steps: a logon followed by a privilege event of the same
// account within the span; completing the sequence raises one alert and starts over.
uint64_t simulateLogonThenPrivilege(std::span<const Facts> facts, int64_t span_ns) {
  std::unordered_map<uint64_t, int64_t> logon;
  uint64_t alerts = 0;
  for (const Facts& f : facts) {
    const uint64_t key = (f.key << 8) ^ f.tenant;
    if (f.kind == Kind::kLogon) {
      logon[key] = f.time_ns;
    } else if (f.kind == Kind::kPriv) {
      auto it = logon.find(key);
      if (it != logon.end() && f.time_ns - it->second <= span_ns) {
        ++alerts;
        logon.erase(it);
      }
    }
  }
  return alerts;
}

bool writeFile(const std::filesystem::path& path, std::string_view data, std::string& error) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  if (!out) {
    error = "cannot write " + path.string() + ": " + std::strerror(errno);
    return false;
  }
  return true;
}

std::string detection(unsigned no, const std::string& name, const std::string& title,
                      const std::string& body, const char* level = "low") {
  return "title: '" + title + "'\nname: " + name + "\nid: " + ruleId(no) +
         "\nstatus: experimental\nauthor: vigil_loadgen\nlogsource: {category: any}\n"
         "detection:\n" + body + "level: " + level + "\n";
}

std::string correlation(unsigned no, const std::string& title, const std::string& body,
                        const char* level = "high") {
  return "title: '" + title + "'\nid: " + ruleId(no) +
         "\nstatus: experimental\nauthor: vigil_loadgen\ncorrelation:\n" + body +
         "level: " + level + "\n";
}

// Rules that look like the ones SOCs keep but match nothing this generator writes: each
// names a literal that never occurs, so they exercise loading and the prefilter.
std::string fillerRule(unsigned i) {
  static const char* kPrograms[] = {"cron", "sudo", "systemd", "postfix", "dockerd", "kubelet"};
  static const char* kFields[] = {"message", "process.name", "cef.act", "query", "EventID",
                                  "user.name"};
  std::string body;
  switch (i % 6) {
    case 0:
      body = "  sel:\n    process.name: " + std::string(kPrograms[i % 6]) +
             "\n    message|contains: 'bench-never-" + std::to_string(i) + "'\n  condition: sel\n";
      break;
    case 1:
      body = "  sel:\n    cef.act: quarantine-" + std::to_string(i) + "\n  condition: sel\n";
      break;
    case 2:
      body = "  sel:\n    query|endswith: '.nomatch" + std::to_string(i) +
             ".invalid'\n  condition: sel\n";
      break;
    case 3:
      body = "  sel:\n    EventID: " + std::to_string(70000 + i) + "\n  condition: sel\n";
      break;
    case 4:
      body = "  sel:\n    message|contains|all:\n      - 'mimikatz'\n      - 'variant-" +
             std::to_string(i) + "'\n  condition: sel\n";
      break;
    default:
      body = "  sel:\n    " + std::string(kFields[i % 6]) + ": 'svc-never-" + std::to_string(i) +
             "'\n  filter:\n    process.name: sshd\n  condition: sel and not filter\n";
      break;
  }
  return detection(kFillerBase + i, "bench_filler_" + std::to_string(i),
                   "Filler rule " + std::to_string(i), body, "informational");
}

bool withIntel(const std::string& workload) { return workload == "W3" || workload == "W4"; }

unsigned ruleDocuments(const WorkloadOptions& o) {
  return o.rules != 0 ? o.rules : (o.workload == "W4" ? 500 : 101);
}

// Writes the workload's rule files into dir/rules, replacing what is there.
bool writeRules(const WorkloadOptions& o, const std::filesystem::path& dir, std::string& error) {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir / "rules", ec)) {
    fs::remove(entry.path(), ec);
  }
  if (o.workload != "W1") {
    std::string ssh = detection(kSshFailed, "bench_ssh_failed", "SSH login failed",
                                "  sel:\n    process.name: sshd\n    event.action: ssh_login\n"
                                "    event.outcome: failure\n  condition: sel\n") +
                      "---\n" +
                      correlation(kBruteForce, "SSH brute force from one address",
                                  "  type: event_count\n  rules: [bench_ssh_failed]\n"
                                  "  group-by: [source.ip]\n  timespan: 60s\n"
                                  "  condition: {gte: 5}\n");
    if (!writeFile(dir / "rules" / "ssh_bruteforce.yml", ssh, error)) return false;
  }
  if (!withIntel(o.workload)) return true;
  std::string scan =
      detection(kFwDeny, "bench_fw_deny", "Firewall denied a connection",
                "  sel:\n    cef.act: deny\n  condition: sel\n") +
      "---\n" +
      correlation(kPortScan, "Port scan: many denied connections from one address",
                  "  type: event_count\n  rules: [bench_fw_deny]\n  group-by: [source.ip]\n"
                  "  timespan: 30s\n  condition: {gte: 20}\n");
  std::string beacon =
      detection(kDnsIoc, "bench_dns_ioc", "DNS lookup of an indicator domain",
                "  sel:\n    type: dns_query\n    intel.list: bench-domains\n  condition: sel\n") +
      "---\n" +
      correlation(kBeacon, "Beaconing: repeated lookups of an indicator domain",
                  "  type: event_count\n  rules: [bench_dns_ioc]\n  group-by: [source.ip]\n"
                  "  timespan: 10m\n  condition: {gte: 10}\n");
  std::string privesc =
      detection(kWinLogon, "bench_win_logon", "Windows logon",
                "  sel:\n    EventID: 4624\n  condition: sel\n") +
      "---\n" +
      detection(kWinPriv, "bench_win_priv", "Special privileges assigned to a new logon",
                "  sel:\n    EventID: 4672\n  condition: sel\n") +
      "---\n" +
      correlation(kLogonPriv, "Logon followed by a privilege assignment",
                  "  type: temporal_ordered\n  rules: [bench_win_logon, bench_win_priv]\n"
                  "  group-by: [TargetUserName]\n  timespan: 5m\n");
  std::string intel =
      detection(kIntelHit, "bench_intel_hit", "Event with an indicator",
                "  sel:\n    intel.list: [bench-ips, bench-domains]\n  condition: sel\n",
                "medium");
  if (!writeFile(dir / "rules" / "port_scan.yml", scan, error) ||
      !writeFile(dir / "rules" / "beaconing.yml", beacon, error) ||
      !writeFile(dir / "rules" / "logon_privilege.yml", privesc, error) ||
      !writeFile(dir / "rules" / "intel_hit.yml", intel, error)) {
    return false;
  }
  std::string fillers;
  for (unsigned i = 0; i + 10 < ruleDocuments(o); ++i) {
    if (i > 0) fillers += "---\n";
    fillers += fillerRule(i);
  }
  return fillers.empty() || writeFile(dir / "rules" / "fillers.yml", fillers, error);
}

// The alerts each rule that writeRules writes must raise over `facts`, in rule order.
std::vector<std::pair<std::string, uint64_t>> expectedAlerts(const WorkloadOptions& o,
                                                             std::span<const Facts> facts) {
  std::vector<std::pair<std::string, uint64_t>> expect;
  if (o.workload != "W1") {
    expect.push_back({ruleId(kSshFailed), 0});
    expect.push_back({ruleId(kBruteForce),
                      simulateEventCount(facts, Kind::kSshFail, 60'000'000'000LL, 5)});
  }
  if (!withIntel(o.workload)) return expect;
  uint64_t ioc_events = 0;
  for (const Facts& f : facts) ioc_events += f.ioc ? 1 : 0;
  expect.push_back({ruleId(kFwDeny), 0});
  expect.push_back({ruleId(kPortScan),
                    simulateEventCount(facts, Kind::kFwDeny, 30'000'000'000LL, 20)});
  expect.push_back({ruleId(kDnsIoc), 0});
  expect.push_back({ruleId(kBeacon),
                    simulateEventCount(facts, Kind::kDnsIoc, 600'000'000'000LL, 10)});
  expect.push_back({ruleId(kWinLogon), 0});
  expect.push_back({ruleId(kWinPriv), 0});
  expect.push_back({ruleId(kLogonPriv), simulateLogonThenPrivilege(facts, 300'000'000'000LL)});
  expect.push_back({ruleId(kIntelHit), ioc_events});
  for (unsigned i = 0; i + 10 < ruleDocuments(o); ++i) {
    expect.push_back({ruleId(kFillerBase + i), 0});
  }
  return expect;
}

nlohmann::json truthJson(const WorkloadOptions& o, const GroundTruth& truth,
                         const std::vector<std::pair<std::string, uint64_t>>& expect,
                         uint64_t indicator_ips, uint64_t indicator_domains) {
  nlohmann::json j;
  j["workload"] = o.workload;
  j["seed"] = o.seed;
  j["events"] = truth.events;
  j["lines"] = {{"rfc3164", truth.lines_rfc3164}, {"rfc5424", truth.lines_rfc5424},
                {"cef", truth.lines_cef}, {"json", truth.lines_json}};
  j["ioc_events"] = truth.ioc_events;
  j["ssh_failed"] = truth.ssh_failed;
  j["injected"] = {{"bruteforce_bursts", truth.bruteforce_bursts}, {"port_scans", truth.scans},
                   {"beacons", truth.beacons}, {"logon_then_privilege", truth.privesc}};
  j["indicators"] = {{"ipv4", indicator_ips}, {"domains", indicator_domains}};
  uint64_t total_alerts = 0;
  nlohmann::json by_rule = nlohmann::json::object();
  for (const auto& [id, n] : expect) {
    by_rule[id] = n;
    total_alerts += n;
  }
  j["alerts_by_rule"] = by_rule;
  j["alerts_total"] = total_alerts;
  j["bruteforce_rule"] = ruleId(kBruteForce);
  j["tenants"] = o.tenants;
  return j;
}

std::pair<uint64_t, uint64_t> indicatorCounts(const WorkloadOptions& o) {
  uint64_t ips = o.ip_indicators, domains = o.domain_indicators;
  if (ips == 0) ips = o.workload == "W4" ? 500'000 : 10'000;
  if (domains == 0) domains = o.workload == "W4" ? 500'000 : 10'000;
  return {ips, domains};
}

// The maximum time from the first to the last event of one planned attack (a beacon).
constexpr int64_t kLongestAttackNs = 490'000'000'000LL;
// Event time with no events between two segments: longer than the longest rule window
// (beaconing, 10 min).
constexpr int64_t kSegmentGapNs = 11 * 60'000'000'000LL;
constexpr int64_t kMaxRunSpanNs = 150LL * 86400 * 1'000'000'000;

}  // namespace

bool generateWorkload(const WorkloadOptions& o, const std::string& dir, bool pcap,
                      std::string& error) {
  namespace fs = std::filesystem;
  const std::string& w = o.workload;
  if (w != "W1" && w != "W2" && w != "W3" && w != "W4") {
    error = "unknown workload '" + w + "': use W1, W2, W3 or W4";
    return false;
  }
  std::error_code ec;
  fs::create_directories(fs::path(dir) / "rules", ec);
  fs::create_directories(fs::path(dir) / "intel", ec);
  if (ec) {
    error = "cannot create " + dir + ": " + ec.message();
    return false;
  }
  const bool with_intel = withIntel(w);
  const auto [ips, domains] = indicatorCounts(o);
  Generator gen(o, with_intel);
  // Indicator domains exist in every workload: beacons in W2 look the same, they are
  // just not on a loaded list.
  gen.makeIndicators(with_intel ? ips : 0, domains);

  std::string events, pcap_data;
  events.reserve(o.events * 200);
  std::vector<Facts> facts;
  GroundTruth truth;
  gen.run(events, facts, truth, pcap, pcap_data);
  tallyLines(facts, truth);
  if (!writeFile(fs::path(dir) / "events.log", events, error)) return false;
  if (pcap && !writeFile(fs::path(dir) / "events.pcap", pcap_data, error)) return false;

  // Indicator lists (W3, W4).
  std::string ip_list, domain_list;
  if (with_intel) {
    ip_list = "# vigil_loadgen indicator addresses\n";
    for (uint32_t ip : gen.iocIps()) ip_list += ipText(ip) + "\n";
    domain_list = "# vigil_loadgen indicator domains\n";
    for (const std::string& d : gen.iocDomains()) domain_list += d + "\n";
  }
  fs::remove(fs::path(dir) / "intel" / "ioc_ips.txt", ec);
  fs::remove(fs::path(dir) / "intel" / "ioc_domains.txt", ec);
  if (with_intel && (!writeFile(fs::path(dir) / "intel" / "ioc_ips.txt", ip_list, error) ||
                     !writeFile(fs::path(dir) / "intel" / "ioc_domains.txt", domain_list, error))) {
    return false;
  }

  // Rules and the alerts each must raise.
  if (!writeRules(o, dir, error)) return false;
  truth.alerts_by_rule = expectedAlerts(o, facts);
  const nlohmann::json j = truthJson(o, truth, truth.alerts_by_rule,
                                     with_intel ? gen.iocIps().size() : 0,
                                     with_intel ? gen.iocDomains().size() : 0);
  return writeFile(fs::path(dir) / "truth.json", j.dump(2) + "\n", error);
}

struct SegmentedWorkload::State {
  Indicators indicators;
  Rng first_rng{0};  // the state after the indicators were drawn, for segment 0
};

SegmentedWorkload::SegmentedWorkload(const WorkloadOptions& options, uint64_t segment_events)
    : options_(options), segment_events_(segment_events), state_(std::make_unique<State>()) {
  options_.events = segment_events;
  const auto [ips, domains] = indicatorCounts(options_);
  // The same draws as generateWorkload, so segment 0 equals its events.log.
  Generator first(options_, withIntel(options_.workload));
  first.makeIndicators(withIntel(options_.workload) ? ips : 0, domains);
  state_->indicators = first.indicators();
  state_->first_rng = first.rng();
  const auto span_ns = static_cast<int64_t>(static_cast<double>(segment_events) /
                                            options_.event_rate * 1e9);
  stride_ns_ = std::max(span_ns, kLongestAttackNs) + kSegmentGapNs;
}

SegmentedWorkload::~SegmentedWorkload() = default;

uint64_t SegmentedWorkload::maxSegments() const {
  return static_cast<uint64_t>(kMaxRunSpanNs / stride_ns_);
}

uint64_t SegmentedWorkload::indicatorIps() const { return state_->indicators.ips.size(); }
uint64_t SegmentedWorkload::indicatorDomains() const {
  return withIntel(options_.workload) ? state_->indicators.domains.size() : 0;
}

Segment SegmentedWorkload::generate(uint64_t index) const {
  WorkloadOptions o = options_;
  o.start_ns += static_cast<int64_t>(index) * stride_ns_;
  Rng rng = state_->first_rng;
  if (index > 0) {
    // Rng seeds through splitmix64, so neighbouring seeds give unrelated streams.
    o.seed = options_.seed ^ (index * 0x9e3779b97f4a7c15ULL);
    rng = Rng(o.seed);
  }
  Generator gen(o, withIntel(o.workload), rng, state_->indicators);
  Segment segment;
  segment.index = index;
  segment.text.reserve(o.events * 200);
  segment.line_ends.reserve(o.events);
  std::string no_pcap;
  gen.run(segment.text, segment.facts, segment.planned, false, no_pcap, &segment.line_ends);
  segment.alerts = expectedAlerts(o, segment.facts);
  return segment;
}

RunTruth::RunTruth(const SegmentedWorkload& workload) : workload_(workload) {
  alerts_ = expectedAlerts(workload.options(), {});
}

void RunTruth::add(const Segment& segment, size_t lines) {
  lines = std::min(lines, segment.facts.size());
  std::span<const Facts> sent(segment.facts.data(), lines);
  tallyLines(sent, totals_);
  const auto alerts = lines == segment.facts.size() ? segment.alerts
                                                    : expectedAlerts(workload_.options(), sent);
  for (size_t i = 0; i < alerts.size(); ++i) alerts_[i].second += alerts[i].second;
  if (lines == segment.facts.size()) {
    // Planned attacks are counted for whole segments only: a cut one may be partly sent.
    ++complete_segments_;
    totals_.bruteforce_bursts += segment.planned.bruteforce_bursts;
    totals_.scans += segment.planned.scans;
    totals_.beacons += segment.planned.beacons;
    totals_.privesc += segment.planned.privesc;
  } else {
    partial_segment_lines_ += lines;
  }
}

bool RunTruth::write(const std::string& path, std::string& error) const {
  nlohmann::json j = truthJson(workload_.options(), totals_, alerts_, workload_.indicatorIps(),
                               workload_.indicatorDomains());
  j["segments"] = {{"complete", complete_segments_},
                   {"partial_lines", partial_segment_lines_},
                   {"stride_s", static_cast<double>(workload_.strideNs()) / 1e9}};
  return writeFile(path, j.dump(2) + "\n", error);
}

}  // namespace vigil::bench
