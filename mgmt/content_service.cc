#include "mgmt/content_service.h"

#include <algorithm>
#include <charconv>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "mgmt/auth_store.h"

namespace vigil::mgmt {
namespace {

// Texts whose changed middle parts exceed this many line pairs are shown as one hunk
// that removes every old line and adds every new one, to bound the LCS table.
constexpr size_t kMaxDiffCells = 16 * 1000 * 1000;
constexpr size_t kContextLines = 3;

std::vector<std::string_view> splitLines(const std::string& text) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    lines.emplace_back(text.data() + start, end - start);
    start = end + 1;
  }
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

// One line of an edit script: ' ' kept, '-' removed, '+' added.
struct DiffLine {
  char op;
  std::string_view text;
  size_t old_line;  // 0-based positions before this line in each text
  size_t new_line;
};

std::vector<DiffLine> editScript(const std::vector<std::string_view>& a,
                                 const std::vector<std::string_view>& b) {
  size_t prefix = 0;
  while (prefix < a.size() && prefix < b.size() && a[prefix] == b[prefix]) ++prefix;
  size_t suffix = 0;
  while (suffix < a.size() - prefix && suffix < b.size() - prefix &&
         a[a.size() - 1 - suffix] == b[b.size() - 1 - suffix]) {
    ++suffix;
  }
  const size_t n = a.size() - prefix - suffix;
  const size_t m = b.size() - prefix - suffix;
  std::vector<DiffLine> out;
  for (size_t i = 0; i < prefix; ++i) out.push_back({' ', a[i], i, i});
  size_t i = 0;
  size_t j = 0;
  if (n * m <= kMaxDiffCells && n > 0 && m > 0) {
    // lcs[i][j]: length of the longest common subsequence of a[i..n) and b[j..m).
    std::vector<uint32_t> lcs((n + 1) * (m + 1), 0);
    auto at = [&](size_t x, size_t y) -> uint32_t& { return lcs[x * (m + 1) + y]; };
    for (size_t x = n; x-- > 0;) {
      for (size_t y = m; y-- > 0;) {
        at(x, y) = a[prefix + x] == b[prefix + y] ? at(x + 1, y + 1) + 1
                                                  : std::max(at(x + 1, y), at(x, y + 1));
      }
    }
    while (i < n && j < m) {
      if (a[prefix + i] == b[prefix + j]) {
        out.push_back({' ', a[prefix + i], prefix + i, prefix + j});
        ++i;
        ++j;
      } else if (at(i + 1, j) >= at(i, j + 1)) {
        out.push_back({'-', a[prefix + i], prefix + i, prefix + j});
        ++i;
      } else {
        out.push_back({'+', b[prefix + j], prefix + i, prefix + j});
        ++j;
      }
    }
  }
  for (; i < n; ++i) out.push_back({'-', a[prefix + i], prefix + i, prefix + j});
  for (; j < m; ++j) out.push_back({'+', b[prefix + j], prefix + n, prefix + j});
  for (size_t k = 0; k < suffix; ++k) {
    out.push_back({' ', a[prefix + n + k], prefix + n + k, prefix + m + k});
  }
  return out;
}

std::string hunkRange(size_t start, size_t count) {
  // diff -u writes an empty range as the line before it.
  if (count == 0) return absl::StrCat(start, ",0");
  if (count == 1) return absl::StrCat(start + 1);
  return absl::StrCat(start + 1, ",", count);
}

}  // namespace

std::string unifiedDiff(const std::string& before, const std::string& after,
                        const std::string& before_name, const std::string& after_name) {
  if (before == after) return "";
  const std::vector<std::string_view> a = splitLines(before);
  const std::vector<std::string_view> b = splitLines(after);
  const std::vector<DiffLine> script = editScript(a, b);
  std::string out = absl::StrCat("--- ", before_name, "\n+++ ", after_name, "\n");
  size_t k = 0;
  while (k < script.size()) {
    if (script[k].op == ' ') {
      ++k;
      continue;
    }
    // A hunk: context before, changes joined while fewer than 2 * context lines apart.
    size_t begin = k > kContextLines ? k - kContextLines : 0;
    size_t end = k;
    while (end < script.size()) {
      if (script[end].op != ' ') {
        ++end;
        continue;
      }
      size_t run = end;
      while (run < script.size() && script[run].op == ' ') ++run;
      if (run == script.size() || run - end > 2 * kContextLines) {
        end = std::min(script.size(), end + kContextLines);
        break;
      }
      end = run;
    }
    size_t old_count = 0;
    size_t new_count = 0;
    for (size_t x = begin; x < end; ++x) {
      if (script[x].op != '+') ++old_count;
      if (script[x].op != '-') ++new_count;
    }
    out += absl::StrCat("@@ -", hunkRange(script[begin].old_line, old_count), " +",
                        hunkRange(script[begin].new_line, new_count), " @@\n");
    for (size_t x = begin; x < end; ++x) {
      out.push_back(script[x].op);
      out.append(script[x].text);
      out.push_back('\n');
    }
    k = end;
  }
  return out;
}

ContentProblem problemFromMessage(const std::string& file, std::string_view message) {
  ContentProblem problem{file, 0, 0, std::string(message)};
  // "<file>:<line>[:<column>]: <text>" with the file name the activator was given.
  if (!message.starts_with(file) || message.size() <= file.size() ||
      message[file.size()] != ':') {
    return problem;
  }
  std::string_view rest = message.substr(file.size() + 1);
  auto number = [&rest](int& out) {
    auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), out);
    if (ec != std::errc() || end == rest.data()) return false;
    rest.remove_prefix(static_cast<size_t>(end - rest.data()));
    return true;
  };
  int line = 0;
  if (!number(line) || rest.empty() || rest.front() != ':') return problem;
  rest.remove_prefix(1);
  int column = 0;
  std::string_view after_line = rest;
  if (number(column) && !rest.empty() && rest.front() == ':') {
    rest.remove_prefix(1);
  } else {
    column = 0;
    rest = after_line;
  }
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  problem.line = line;
  problem.column = column;
  problem.message = std::string(rest);
  return problem;
}

ContentService::ContentService(ContentStore& store, MetricsRegistry& metrics,
                               ContentServiceOptions options, const Clock* clock)
    : store_(store),
      metrics_(metrics),
      options_(options),
      clock_(clock != nullptr ? clock : &RealClock::instance()) {}

void ContentService::setActivator(ContentKind kind, ContentActivator activator) {
  activators_[kind] = std::move(activator);
}

bool ContentService::tenantScoped(ContentKind kind) const {
  auto it = activators_.find(kind);
  return it != activators_.end() && it->second.tenant_scoped;
}

bool ContentService::allTenantsScope(ContentKind kind) const {
  auto it = activators_.find(kind);
  return it != activators_.end() && it->second.tenant_scoped && it->second.all_tenants_scope;
}

ContentActivator* ContentService::activator(ContentKind kind) {
  auto it = activators_.find(kind);
  return it == activators_.end() ? nullptr : &it->second;
}

void ContentService::count(ContentKind kind, const std::string& tenant,
                           std::string_view outcome) {
  std::string label = tenant;
  {
    std::lock_guard<std::mutex> lock(count_mutex_);
    if (counted_tenants_.count(label) == 0) {
      if (counted_tenants_.size() < kMaxTenantSeries) {
        counted_tenants_.insert(label);
      } else {
        label = "_other";
      }
    }
  }
  metrics_
      .counter("vigil_content_operations_total",
               "Content pushes, dry runs and activations, by kind, tenant scope (* for every "
               "tenant) and outcome",
               {{"kind", std::string(contentKindName(kind))},
                {"tenant", label},
                {"outcome", std::string(outcome)}})
      .add();
}

absl::StatusOr<ContentService::PushResult> ContentService::push(ContentKind kind,
                                                                const std::string& tenant,
                                                                const std::string& author,
                                                                const ContentFiles& files) {
  ContentActivator* act = activator(kind);
  if (act == nullptr) {
    return absl::UnimplementedError(
        absl::StrCat("this vigild has no handler for ", contentKindName(kind), " content"));
  }
  std::lock_guard<std::mutex> lock(push_mutex_);
  return pushLocked(act, kind, tenant, author, files);
}

absl::StatusOr<ContentService::PushResult> ContentService::remove(ContentKind kind,
                                                                  const std::string& tenant,
                                                                  const std::string& author,
                                                                  const std::string& item) {
  ContentActivator* act = activator(kind);
  if (act == nullptr) {
    return absl::UnimplementedError(
        absl::StrCat("this vigild has no handler for ", contentKindName(kind), " content"));
  }
  if (!act->deletable || (!item.empty() && !act->remove_item)) {
    return absl::InvalidArgumentError(absl::StrCat(
        contentKindName(kind), " content cannot be deleted", item.empty() ? "" : " by item",
        "; push a new version or activate an older one"));
  }
  if (item.empty() && tenant == kAllTenants) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the ", contentKindName(kind), " for every tenant cannot be deleted as a whole; give "
        "?tenant=NAME to delete one tenant's, delete single items, or activate an older "
        "version"));
  }
  std::lock_guard<std::mutex> lock(push_mutex_);
  absl::StatusOr<std::optional<ContentVersion>> active = store_.active(kind, tenant);
  if (!active.ok()) return active.status();
  if (!active->has_value() || (*active)->files.empty()) {
    return absl::NotFoundError(absl::StrCat(
        "tenant ", tenant, " has no active ", contentKindName(kind),
        active->has_value() ? absl::StrCat(" (its active version ", (*active)->version,
                                           " is a deletion)")
                            : std::string()));
  }
  ContentFiles files;
  if (!item.empty()) {
    absl::StatusOr<ContentFiles> rest = act->remove_item((*active)->files, item);
    if (!rest.ok()) return rest.status();
    files = std::move(*rest);
  }
  return pushLocked(act, kind, tenant, author, files);
}

absl::StatusOr<ContentService::PushResult> ContentService::pushLocked(ContentActivator* act,
                                                                      ContentKind kind,
                                                                      const std::string& tenant,
                                                                      const std::string& author,
                                                                      const ContentFiles& files) {
  PushResult result;
  ContentRequest request{kind, tenant, 0, &files};
  // The number the version will get, so the commit can tag what it activates.
  absl::StatusOr<std::vector<ContentVersion>> existing = store_.list(kind, tenant);
  if (!existing.ok()) return existing.status();
  request.version = existing->empty() ? 1 : existing->front().version + 1;
  ContentCommit commit = act->prepare(request, result.problems);
  if (!commit || !result.problems.empty()) {
    count(kind, tenant, "rejected");
    VIGIL_LOG_WARN("content push rejected kind={} tenant={} author={} problems={}",
                   contentKindName(kind), tenant, author, result.problems.size());
    if (result.problems.empty()) result.problems.push_back({"", 0, 0, "the content did not compile"});
    return result;
  }
  absl::StatusOr<ContentVersion> stored =
      store_.add(kind, tenant, author, files, clock_->nowNs());
  if (!stored.ok()) return stored.status();
  if (stored->version != request.version) {
    // Pushes are serialized here, so only another process writing the database can
    // take the number; compile again under the number the row got.
    request.version = stored->version;
    commit = act->prepare(request, result.problems);
    if (!commit) return absl::AbortedError("content changed while it was pushed; push again");
  }
  if (absl::Status s = commit(); !s.ok()) {
    count(kind, tenant, "failed");
    VIGIL_LOG_ERROR("content activation failed kind={} tenant={} version={} error=\"{}\"",
                    contentKindName(kind), tenant, stored->version,
                    logText(std::string(s.message())));
    return s;
  }
  const int64_t activated_ns = clock_->nowNs();
  if (absl::Status s = store_.activate(kind, tenant, stored->version, author, activated_ns);
      !s.ok()) {
    // NOTE: the new content is live but the store still names the previous version as
    // active, so a restart would load that one.
    VIGIL_LOG_ERROR(
        "content is live but not marked active kind={} tenant={} version={} "
        "error=\"{}\"",
        contentKindName(kind), tenant, stored->version, logText(std::string(s.message())));
    return s;
  }
  stored->active = true;
  stored->activated_ns = activated_ns;
  stored->activated_by = author;
  count(kind, tenant, "activated");
  VIGIL_LOG_INFO("content activated kind={} tenant={} version={} author={} sha256={}",
                 contentKindName(kind), tenant, stored->version, author, stored->sha256);
  result.version = std::move(*stored);
  return result;
}

absl::StatusOr<ContentService::DryRunResult> ContentService::dryRun(ContentKind kind,
                                                                    const std::string& tenant,
                                                                    const ContentFiles& files,
                                                                    const nlohmann::json& sample) {
  ContentActivator* act = activator(kind);
  if (act == nullptr || !act->dry_run) {
    return absl::UnimplementedError(
        absl::StrCat("dry runs of ", contentKindName(kind), " content are not supported"));
  }
  DryRunResult result;
  ContentRequest request{kind, tenant, 0, &files};
  absl::StatusOr<nlohmann::json> output = act->dry_run(request, sample, result.problems);
  if (!output.ok()) return output.status();
  result.output = std::move(*output);
  count(kind, tenant, result.problems.empty() ? "dry_run" : "rejected");
  return result;
}

absl::StatusOr<ContentVersion> ContentService::activate(ContentKind kind,
                                                        const std::string& tenant,
                                                        int64_t version,
                                                        const std::string& author) {
  ContentActivator* act = activator(kind);
  if (act == nullptr) {
    return absl::UnimplementedError(
        absl::StrCat("this vigild has no handler for ", contentKindName(kind), " content"));
  }
  std::lock_guard<std::mutex> lock(push_mutex_);
  absl::StatusOr<ContentVersion> stored = store_.get(kind, tenant, version);
  if (!stored.ok()) return stored.status();
  std::vector<ContentProblem> problems;
  ContentRequest request{kind, tenant, version, &stored->files};
  ContentCommit commit = act->prepare(request, problems);
  if (!commit || !problems.empty()) {
    count(kind, tenant, "rejected");
    std::string first = problems.empty() ? "" : problems.front().message;
    return absl::FailedPreconditionError(
        absl::StrCat(contentKindName(kind), " version ", version,
                     " no longer compiles (", problems.size(), " problems; first: ", first,
                     "); the active version stays"));
  }
  if (absl::Status s = commit(); !s.ok()) {
    count(kind, tenant, "failed");
    return s;
  }
  const int64_t activated_ns = clock_->nowNs();
  if (absl::Status s = store_.activate(kind, tenant, version, author, activated_ns); !s.ok()) {
    return s;
  }
  count(kind, tenant, "activated");
  VIGIL_LOG_INFO("content activated kind={} tenant={} version={} author={} sha256={}",
                 contentKindName(kind), tenant, version, author, stored->sha256);
  stored->active = true;
  stored->activated_ns = activated_ns;
  stored->activated_by = author;
  stored->files.clear();
  return stored;
}

absl::Status ContentService::refresh(ContentKind kind, const std::string& tenant,
                                     const std::function<absl::Status()>& without_active) {
  std::lock_guard<std::mutex> lock(push_mutex_);
  absl::StatusOr<std::optional<ContentVersion>> active = store_.active(kind, tenant);
  if (!active.ok()) return active.status();
  ContentActivator* act = activator(kind);
  if (!active->has_value() || act == nullptr) return without_active();
  const ContentVersion& v = **active;
  std::vector<ContentProblem> problems;
  ContentRequest request{kind, tenant, v.version, &v.files};
  ContentCommit commit = act->prepare(request, problems);
  if (!commit || !problems.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "active ", contentKindName(kind), " version ", v.version, " does not compile: ",
        problems.empty() ? "unknown error" : problems.front().message));
  }
  return commit();
}

size_t ContentService::restoreActive(ContentKind kind) {
  ContentActivator* act = activator(kind);
  if (act == nullptr) return 0;
  absl::StatusOr<std::vector<std::string>> tenants = store_.activeTenants(kind);
  if (!tenants.ok()) {
    VIGIL_LOG_ERROR("cannot read active content kind={} error=\"{}\"", contentKindName(kind),
                    logText(std::string(tenants.status().message())));
    return 0;
  }
  size_t restored = 0;
  for (const std::string& tenant : *tenants) {
    absl::StatusOr<std::optional<ContentVersion>> active = store_.active(kind, tenant);
    if (!active.ok() || !active->has_value()) continue;
    const ContentVersion& v = **active;
    std::vector<ContentProblem> problems;
    ContentRequest request{kind, tenant, v.version, &v.files};
    ContentCommit commit = act->prepare(request, problems);
    absl::Status status = commit && problems.empty()
                              ? commit()
                              : absl::FailedPreconditionError(
                                    problems.empty() ? "did not compile" : problems[0].message);
    if (!status.ok()) {
      count(kind, tenant, "restore_failed");
      VIGIL_LOG_ERROR(
          "stored active content not loaded kind={} tenant={} version={} "
          "error=\"{}\"",
          contentKindName(kind), tenant, v.version, logText(std::string(status.message())));
      continue;
    }
    ++restored;
    count(kind, tenant, "restored");
    VIGIL_LOG_INFO("stored active content loaded kind={} tenant={} version={} sha256={}",
                   contentKindName(kind), tenant, v.version, v.sha256);
  }
  return restored;
}

absl::StatusOr<nlohmann::json> ContentService::diff(ContentKind kind, const std::string& tenant,
                                                    int64_t version, int64_t against) {
  absl::StatusOr<ContentVersion> after = store_.get(kind, tenant, version);
  if (!after.ok()) return after.status();
  absl::StatusOr<ContentVersion> before = store_.get(kind, tenant, against);
  if (!before.ok()) return before.status();
  std::vector<std::string> paths;
  for (const auto& [path, text] : before->files) paths.push_back(path);
  for (const auto& [path, text] : after->files) {
    if (!before->files.count(path)) paths.push_back(path);
  }
  std::sort(paths.begin(), paths.end());
  nlohmann::json files = nlohmann::json::array();
  for (const std::string& path : paths) {
    auto old_it = before->files.find(path);
    auto new_it = after->files.find(path);
    const bool added = old_it == before->files.end();
    const bool removed = new_it == after->files.end();
    std::string patch = unifiedDiff(added ? "" : old_it->second, removed ? "" : new_it->second,
                                    added ? "/dev/null" : absl::StrCat("a/", path),
                                    removed ? "/dev/null" : absl::StrCat("b/", path));
    if (patch.empty()) continue;
    std::string status = added ? "added" : removed ? "removed" : "modified";
    files.push_back({{"path", path}, {"status", status}, {"diff", patch}});
  }
  return nlohmann::json{{"kind", contentKindName(kind)}, {"tenant", tenant},
                        {"version", version}, {"against", against}, {"files", files}};
}

absl::Status ContentService::checkTenantExists(const std::string& tenant) const {
  if (tenants_ == nullptr || tenant == kAllTenants) return absl::OkStatus();
  return tenants_->checkTenant(tenant);
}

absl::Status ContentService::authorize(const Principal& principal, ContentKind kind,
                                       const std::string& tenant, bool write) const {
  if (!principal.authenticated()) {
    if (options_.allow_unauthenticated) return absl::OkStatus();
    return absl::UnauthenticatedError("content routes need an API token");
  }
  const bool every_tenant = !tenantScoped(kind) || tenant == kAllTenants;
  // Content of every tenant is readable by every principal, because it applies to them.
  if (!write && every_tenant) return absl::OkStatus();
  if (every_tenant) {
    if (principal.allTenants()) return absl::OkStatus();
    return absl::PermissionDeniedError(absl::StrCat(
        contentKindName(kind), " content for every tenant applies to all of them, so only the "
                               "admin role may change it",
        tenantScoped(kind) ? "; give ?tenant=NAME to change one tenant's content" : ""));
  }
  const bool allowed = write ? principal.canAdminister(tenant) : principal.canRead(tenant);
  if (allowed) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat("principal ", principal.subject, " may not ",
                                                  write ? "change" : "read", " ",
                                                  contentKindName(kind), " of tenant ", tenant));
}

}  // namespace vigil::mgmt
