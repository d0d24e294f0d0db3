#include "mgmt/blocklist_connector.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/ip.h"
#include "common/log.h"
#include "mgmt/action_router.h"

extern char** environ;

namespace vigil::mgmt {
namespace {

namespace pb = playbook_vm;
using json = nlohmann::json;

constexpr int64_t kSecondNs = 1'000'000'000;
constexpr int64_t kMaxDurationS = 30 * 86400;

std::string_view verbOf(std::string_view action) {
  size_t dot = action.rfind('.');
  return dot == std::string_view::npos ? action : action.substr(dot + 1);
}

// Writes `text` to `path` through a temporary file in the same folder: write, fsync,
// rename, so a reader sees the old or the new file, never a mix.
absl::Status writeAtomically(const std::string& path, const std::string& text) {
  std::string tmp = absl::StrCat(path, ".tmp.", ::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat("cannot write ", tmp, ": ", std::strerror(errno)));
  }
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  bool ok = done == text.size() && ::fsync(fd) == 0;
  std::string why = ok ? "" : std::strerror(errno);
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    if (why.empty()) why = std::strerror(errno);
    ::unlink(tmp.c_str());
    return absl::UnavailableError(absl::StrCat("cannot replace ", path, ": ", why));
  }
  return absl::OkStatus();
}

std::string nftString(const std::string& text) {
  std::string out;
  for (char ch : text) {
    if (ch == '"' || ch == '\\' || static_cast<unsigned char>(ch) < 0x20) continue;
    out.push_back(ch);
  }
  return out.substr(0, 120);
}

}  // namespace

absl::StatusOr<std::unique_ptr<BlocklistConnector>> BlocklistConnector::create(
    const ConnectorConfig& config, const Clock* clock) {
  auto valid_name = [](const std::string& name) {
    return !name.empty() && std::all_of(name.begin(), name.end(), [](char ch) {
      return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
             ch == '_' || ch == ' ';
    });
  };
  if (!valid_name(config.set) || config.set.find(' ') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("connector ", config.name, ": set '", config.set,
                                                   "' must be letters, digits and _"));
  }
  if (!valid_name(config.table) || config.table.find(' ') == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("connector ", config.name, ": table '", config.table,
                     "' must be 'FAMILY NAME', e.g. 'inet vigil'"));
  }
  std::unique_ptr<BlocklistConnector> c(
      new BlocklistConnector(config, clock != nullptr ? clock : &RealClock::instance()));
  if (absl::Status st = c->loadState(); !st.ok()) return st;
  return c;
}

BlocklistConnector::BlocklistConnector(ConnectorConfig config, const Clock* clock)
    : config_(std::move(config)), clock_(clock) {}

absl::Status BlocklistConnector::loadState() {
  std::ifstream in(config_.path + ".state.json");
  if (!in) return absl::OkStatus();  // first start
  std::stringstream text;
  text << in.rdbuf();
  json state = json::parse(text.str(), nullptr, false);
  if (!state.is_object() || !state.contains("entries") || !state["entries"].is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("connector ", config_.name, ": ", config_.path,
                     ".state.json is not a block list state file; move it away to start empty"));
  }
  for (const auto& [ip, e] : state["entries"].items()) {
    if (!parseIp(ip) || !e.is_object()) continue;
    Entry entry;
    entry.expires_ns = e.value("expires_ns", int64_t{0});
    entry.count = e.value("count", int64_t{1});
    entry.comment = e.value("comment", std::string());
    if (e.contains("keys") && e["keys"].is_array()) {
      for (const json& key : e["keys"]) {
        if (key.is_string()) entry.keys.push_back(key.get<std::string>());
      }
    }
    entries_[ip] = entry;
  }
  return absl::OkStatus();
}

std::string BlocklistConnector::render(int64_t now_ns) const {
  std::string v4, v6;
  for (const auto& [ip, e] : entries_) {
    std::string element = ip;
    if (e.expires_ns != 0) {
      int64_t left_s = std::max<int64_t>(1, (e.expires_ns - now_ns + kSecondNs - 1) / kSecondNs);
      absl::StrAppend(&element, " timeout ", left_s, "s");
    }
    if (!e.comment.empty()) absl::StrAppend(&element, " comment \"", nftString(e.comment), "\"");
    std::string& list = ip.find(':') == std::string::npos ? v4 : v6;
    absl::StrAppend(&list, list.empty() ? "" : ",\n  ", element);
  }
  const std::string& t = config_.table;
  const std::string s4 = config_.set + "_v4";
  const std::string s6 = config_.set + "_v6";
  std::string out = absl::StrCat(
      "# Written by vigild (playbook connector ", config_.name,
      "); every change replaces this file. Load it with: nft -f ", config_.path, "\n",
      "table ", t, " {\n", "  set ", s4, " { type ipv4_addr; flags timeout; }\n", "  set ", s6,
      " { type ipv6_addr; flags timeout; }\n", "}\n", "flush set ", t, " ", s4, "\n",
      "flush set ", t, " ", s6, "\n");
  if (!v4.empty()) absl::StrAppend(&out, "add element ", t, " ", s4, " {\n  ", v4, "\n}\n");
  if (!v6.empty()) absl::StrAppend(&out, "add element ", t, " ", s6, " {\n  ", v6, "\n}\n");
  return out;
}

absl::Status BlocklistConnector::runApplyCommand() const {
  if (config_.apply_command.empty()) return absl::OkStatus();
  std::vector<char*> argv;
  for (const std::string& arg : config_.apply_command) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, argv[0], nullptr, nullptr, argv.data(), environ);
  if (rc != 0) {
    return absl::UnavailableError(absl::StrCat("cannot run apply_command ", config_.apply_command[0],
                                               ": ", std::strerror(rc)));
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::UnavailableError(absl::StrCat("apply_command ", absl::StrJoin(config_.apply_command, " "),
                                               " failed with status ", WEXITSTATUS(status)));
  }
  return absl::OkStatus();
}

absl::Status BlocklistConnector::rewrite() {
  const int64_t now = clock_->nowNs();
  for (auto it = entries_.begin(); it != entries_.end();) {
    it = it->second.expires_ns != 0 && it->second.expires_ns <= now ? entries_.erase(it)
                                                                     : std::next(it);
  }
  json state = {{"entries", json::object()}};
  for (const auto& [ip, e] : entries_) {
    state["entries"][ip] = {{"expires_ns", e.expires_ns},
                            {"count", e.count},
                            {"comment", e.comment},
                            {"keys", e.keys}};
  }
  if (absl::Status st = writeAtomically(config_.path + ".state.json", state.dump(1)); !st.ok()) {
    return st;
  }
  if (absl::Status st = writeAtomically(config_.path, render(now)); !st.ok()) return st;
  return runApplyCommand();
}

absl::Status BlocklistConnector::block(const std::string& ip_text, int64_t duration_s,
                                       const std::string& comment, const std::string& action_key) {
  std::optional<IpAddr> ip = parseIp(ip_text);
  if (!ip) {
    return absl::InvalidArgumentError(
        absl::StrCat("ip '", ip_text, "' is not an IPv4 or IPv6 address"));
  }
  if (duration_s < 0 || duration_s > kMaxDurationS) {
    return absl::InvalidArgumentError(
        absl::StrCat("duration_s ", duration_s, " is outside 0..", kMaxDurationS));
  }
  const std::string key = formatIp(*ip);
  const int64_t now = clock_->nowNs();
  auto it = entries_.find(key);
  bool listed = it != entries_.end() && (it->second.expires_ns == 0 || it->second.expires_ns > now);
  if (!listed && entries_.size() >= config_.max_entries) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "block list ", config_.name, " holds max_entries=", config_.max_entries, " addresses"));
  }
  if (listed && !action_key.empty() &&
      std::find(it->second.keys.begin(), it->second.keys.end(), action_key) !=
          it->second.keys.end()) {
    // This block was done before; write and apply the list again in case the earlier
    // attempt stopped before it ran the apply command.
    return rewrite();
  }
  Entry entry;
  entry.comment = comment;
  entry.count = listed ? it->second.count + 1 : 1;
  if (listed) entry.keys = it->second.keys;
  if (!action_key.empty()) {
    entry.keys.push_back(action_key);
    if (entry.keys.size() > kKeysPerEntry) entry.keys.erase(entry.keys.begin());
  }
  if (duration_s > 0) {
    int64_t scaled = duration_s;
    for (int64_t i = 1; i < entry.count && scaled < kMaxDurationS; ++i) scaled *= 2;
    entry.expires_ns = now + std::min(scaled, kMaxDurationS) * kSecondNs;
  }
  entries_[key] = entry;
  return rewrite();
}

absl::Status BlocklistConnector::unblock(const std::string& ip_text) {
  std::optional<IpAddr> ip = parseIp(ip_text);
  if (!ip) {
    return absl::InvalidArgumentError(
        absl::StrCat("ip '", ip_text, "' is not an IPv4 or IPv6 address"));
  }
  entries_.erase(formatIp(*ip));
  return rewrite();
}

absl::Status BlocklistConnector::perform(std::string_view action, const pb::List& params,
                                         pb::HostCall& call, pb::Value& result) {
  json p = paramsToJson(params);
  std::string ip = p.value("ip", json()).is_string() ? p["ip"].get<std::string>() : "";
  if (ip.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(action), ": needs ip: ADDRESS in with:"));
  }
  std::string_view verb = verbOf(action);
  absl::Status st;
  if (verb == "block_ip" || verb == "block") {
    int64_t duration = config_.default_duration_s;
    if (p.contains("duration_s") && p["duration_s"].is_number_integer()) {
      duration = p["duration_s"].get<int64_t>();
    }
    std::string comment = p.value("comment", json()).is_string() ? p["comment"].get<std::string>()
                                                                 : std::string();
    if (comment.empty()) comment = absl::StrCat("run ", runContext(call).run_id);
    st = block(ip, duration, comment, runContext(call).action_key);
  } else if (verb == "unblock_ip" || verb == "unblock") {
    st = unblock(ip);
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "block list connector ", config_.name, " does not know action ", std::string(action),
        "; use a name ending in block_ip or unblock_ip"));
  }
  if (!st.ok()) return st;
  std::optional<pb::Value> text = call.newString(formatIp(*parseIp(ip)));
  if (!text) return absl::ResourceExhaustedError("run heap memory limit reached");
  result = *text;
  return absl::OkStatus();
}

}  // namespace vigil::mgmt
