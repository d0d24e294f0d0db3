#include "common/event.h"

#include <charconv>

#include "common/time.h"

namespace vigil {
namespace {

std::string_view writeInt(int64_t value, std::array<char, 64>& scratch) {
  auto [end, ec] = std::to_chars(scratch.data(), scratch.data() + scratch.size(), value);
  (void)ec;
  return {scratch.data(), static_cast<size_t>(end - scratch.data())};
}

std::string_view writeIp(const IpAddr& addr, std::array<char, 64>& scratch) {
  return {scratch.data(), formatIp(addr, scratch.data(), scratch.size())};
}

std::optional<std::string_view> nonEmpty(std::string_view v) {
  if (v.empty()) return std::nullopt;
  return v;
}

}  // namespace

std::string_view formatName(EventFormat f) {
  switch (f) {
    case EventFormat::kRfc3164: return "rfc3164";
    case EventFormat::kRfc5424: return "rfc5424";
    case EventFormat::kJson: return "json";
    case EventFormat::kRaw: return "raw";
    case EventFormat::kCef: return "cef";
    case EventFormat::kLeef: return "leef";
    case EventFormat::kUnknown: break;
  }
  return "unknown";
}

std::string_view indicatorTypeName(IndicatorType t) {
  switch (t) {
    case IndicatorType::kIpv4: return "ipv4";
    case IndicatorType::kIpv6: return "ipv6";
    case IndicatorType::kCidr: return "cidr";
    case IndicatorType::kDomain: return "domain";
    case IndicatorType::kUrl: return "url";
    case IndicatorType::kMd5: return "md5";
    case IndicatorType::kSha1: return "sha1";
    case IndicatorType::kSha256: return "sha256";
  }
  return "unknown";
}

void Event::reset() {
  raw = {};
  receive_ns = 0;
  source_id = 0;
  vlan = 0;
  peer.reset();
  tenant = {};
  format = EventFormat::kUnknown;
  flags = 0;
  timestamp_ns = 0;
  facility = -1;
  severity = -1;
  host = app = procid = msgid = structured_data = message = {};
  src_ip.reset();
  dst_ip.reset();
  src_port = dst_port = 0;
  user = action = outcome = {};
  field_count = 0;
  hit_count = 0;
  arena.reset();
}

bool Event::addField(std::string_view name, std::string_view value) {
  if (field_count == kMaxFields) {
    flags |= kFlagFieldsOverflow;
    return false;
  }
  fields[field_count++] = Field{name, value};
  return true;
}

bool Event::addHit(const IndicatorHit& hit) {
  if (hit_count == kMaxHits) {
    flags |= kFlagHitsOverflow;
    return false;
  }
  hits[hit_count++] = hit;
  return true;
}

std::optional<std::string_view> Event::get(std::string_view name,
                                           std::array<char, 64>& scratch) const {
  if (name == "message") return message;
  if (name == "host.name") return nonEmpty(host);
  if (name == "process.name") return nonEmpty(app);
  if (name == "process.pid") return nonEmpty(procid);
  if (name == "log.syslog.msgid") return nonEmpty(msgid);
  if (name == "user.name") return nonEmpty(user);
  if (name == "event.action") return nonEmpty(action);
  if (name == "event.outcome") return nonEmpty(outcome);
  if (name == "tenant") return nonEmpty(tenant);
  if (name == "source.ip") {
    if (!src_ip) return std::nullopt;
    return writeIp(*src_ip, scratch);
  }
  if (name == "destination.ip") {
    if (!dst_ip) return std::nullopt;
    return writeIp(*dst_ip, scratch);
  }
  if (name == "source.port") {
    if (src_port == 0) return std::nullopt;
    return writeInt(src_port, scratch);
  }
  if (name == "destination.port") {
    if (dst_port == 0) return std::nullopt;
    return writeInt(dst_port, scratch);
  }
  if (name == "log.syslog.facility.code") {
    if (facility < 0) return std::nullopt;
    return writeInt(facility, scratch);
  }
  if (name == "log.syslog.severity.code") {
    if (severity < 0) return std::nullopt;
    return writeInt(severity, scratch);
  }
  if (name == "@timestamp") {
    return std::string_view(scratch.data(), formatRfc3339(timestamp_ns, scratch.data(), scratch.size()));
  }
  if (name == "event.created") {
    return std::string_view(scratch.data(), formatRfc3339(receive_ns, scratch.data(), scratch.size()));
  }
  for (size_t i = 0; i < field_count; ++i) {
    if (fields[i].name == name) return fields[i].value;
  }
  return std::nullopt;
}

}  // namespace vigil
