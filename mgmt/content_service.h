// Content pushes: validate, compile, store as a version and activate rule sets, analyst
// indicator lists and playbooks, with dry runs, diffs and rollback to any version.
//
// The service knows nothing about rules or playbooks itself. The daemon gives it one
// ContentActivator per kind: a function that checks and compiles files without touching
// live state and returns the step that makes them live. A push runs that function first,
// so a push with errors changes nothing; only then is the version stored and activated.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "mgmt/api_server.h"
#include "mgmt/content_store.h"
#include "mgmt/principal.h"

namespace vigil::mgmt {

class AuthStore;

// One error in pushed content. `line` and `column` are 1-based, 0 when unknown.
struct ContentProblem {
  std::string file;
  int line = 0;
  int column = 0;
  std::string message;
};

// What an activator's functions get: the content and where it goes.
struct ContentRequest {
  ContentKind kind = ContentKind::kRules;
  std::string tenant;  // kAllTenants for content that applies to every tenant
  int64_t version = 0;  // the version being activated; 0 in a dry run
  const ContentFiles* files = nullptr;
};

// Makes compiled content live. Returns an error only when the swap itself failed, and
// then must have left the previous content live.
using ContentCommit = std::function<absl::Status()>;

struct ContentActivator {
  // True when each tenant has its own versions and pushes need canAdminister(tenant).
  // False when the content applies to every tenant: it is stored under kAllTenants and
  // pushes need the admin role.
  bool tenant_scoped = false;
  // With tenant_scoped: content for every tenant is accepted too, addressed by leaving
  // out the tenant (or giving kAllTenants) and stored under kAllTenants. Every principal
  // may read it and only the admin role may change it.
  bool all_tenants_scope = false;
  // Checks and compiles the files, appends every problem found, and returns the commit
  // step, or an empty function when there were problems. Must not change live state.
  std::function<ContentCommit(const ContentRequest&, std::vector<ContentProblem>&)> prepare;
  // Optional. Compiles the files and runs them on `sample` (the request's "events"
  // member) without activating anything; returns what they would produce as JSON.
  std::function<absl::StatusOr<nlohmann::json>(const ContentRequest&, const nlohmann::json& sample,
                                                std::vector<ContentProblem>&)>
      dry_run;
  // Optional: the content can be deleted. `prepare` then accepts an empty file set, which
  // removes the scope's content (ContentService::remove() stores such a version).
  bool deletable = false;
  // Optional: returns `files` without item `item` (for rules, a rule id), NotFound when no
  // file has it. Must not change live state.
  std::function<absl::StatusOr<ContentFiles>(const ContentFiles& files, const std::string& item)>
      remove_item;
};

struct ContentServiceOptions {
  // Accept requests whose principal is not authenticated (no token layer in front of
  // the API), recording the author as "unauthenticated". With false they get 401.
  bool allow_unauthenticated = false;
  size_t max_files = 10000;  // files per push
};

class ContentService {
 public:
  // `store` and `metrics` must outlive the service. `clock` null means the real clock.
  ContentService(ContentStore& store, MetricsRegistry& metrics,
                 ContentServiceOptions options = {}, const Clock* clock = nullptr);

  // Sets the activator of `kind`. Call before addRoutes() and before any push.
  void setActivator(ContentKind kind, ContentActivator activator);
  bool hasActivator(ContentKind kind) const { return activators_.count(kind) > 0; }
  bool tenantScoped(ContentKind kind) const;
  // True when `kind` is tenant-scoped and also accepts content for every tenant.
  bool allTenantsScope(ContentKind kind) const;

  struct PushResult {
    std::vector<ContentProblem> problems;  // empty when the push was accepted
    std::optional<ContentVersion> version;  // the stored and active version
  };
  // Validates and compiles `files`; when there is no problem, stores them as a new
  // version and activates it. Problems are a result, not an error; errors are for an
  // unknown kind, a store failure or a failed commit (the old content stays live).
  absl::StatusOr<PushResult> push(ContentKind kind, const std::string& tenant,
                                  const std::string& author, const ContentFiles& files);

  // Deletes content as a new version, so the deletion is listed, diffed and rolled back
  // like a push: with `item` empty, a version without files (the scope's content goes);
  // otherwise the active version's files without `item` (for rules, one rule id). The
  // version is checked and activated as a push is, so problems (a rule that another
  // still references) are a result. Errors: InvalidArgument when `kind` cannot be
  // deleted or `item` empty is asked for the content of every tenant, NotFound when
  // (kind, tenant) has no active content or the content has no `item`.
  absl::StatusOr<PushResult> remove(ContentKind kind, const std::string& tenant,
                                    const std::string& author, const std::string& item);

  struct DryRunResult {
    std::vector<ContentProblem> problems;
    nlohmann::json output;  // what the activator's dry_run returned
  };
  // Compiles `files` and runs them on `sample` without storing or activating anything.
  absl::StatusOr<DryRunResult> dryRun(ContentKind kind, const std::string& tenant,
                                      const ContentFiles& files, const nlohmann::json& sample);

  // Compiles stored version `version` again and activates it (a rollback when it is
  // older than the active one). FailedPrecondition when it no longer compiles, for
  // example after a field mapping change; the active version stays.
  absl::StatusOr<ContentVersion> activate(ContentKind kind, const std::string& tenant,
                                          int64_t version, const std::string& author);

  // Activates the stored active version of every tenant of `kind`, as at startup. A
  // version that fails to compile is logged, counted and skipped. Returns how many were
  // activated.
  size_t restoreActive(ContentKind kind);

  // Compiles the active version of (kind, tenant) again and commits it, as a config
  // reload does after field mappings change. When no version is active, runs
  // `without_active` instead (the daemon loads the configured files). Both run under the
  // lock pushes take, so a reload cannot overwrite a push that lands meanwhile.
  absl::Status refresh(ContentKind kind, const std::string& tenant,
                       const std::function<absl::Status()>& without_active);

  // Unified diff of every file that differs between version `against` and `version`.
  absl::StatusOr<nlohmann::json> diff(ContentKind kind, const std::string& tenant,
                                      int64_t version, int64_t against);

  // Sets the token store whose tenants are the only ones that pushes, deletions and
  // activations may name with ?tenant=; `tenants` is not owned. Without one, any valid
  // tenant name is accepted. Call before addRoutes().
  void setTenantStore(AuthStore* tenants) { tenants_ = tenants; }

  // Registers the /api/v1/content routes (docs/api.md describes them) with `add`, which
  // takes the method, the path pattern and the handler, as ApiServer::addRoute does.
  using RouteAdder = std::function<void(const char* method, const char* pattern, ApiHandler)>;
  void addRoutes(const RouteAdder& add);
  void addRoutes(ApiServer& api);

  ContentStore& store() { return store_; }

 private:
  absl::Status authorize(const Principal& principal, ContentKind kind, const std::string& tenant,
                         bool write) const;
  ContentActivator* activator(ContentKind kind);
  // InvalidArgument when `tenant` is a tenant name that the tenant store does not hold.
  absl::Status checkTenantExists(const std::string& tenant) const;
  // push() and remove() after they took push_mutex_.
  absl::StatusOr<PushResult> pushLocked(ContentActivator* act, ContentKind kind,
                                        const std::string& tenant, const std::string& author,
                                        const ContentFiles& files);
  // Counts one operation in vigil_content_operations_total{kind, tenant, outcome}. The
  // first kMaxTenantSeries tenant scopes get their own series, later ones "_other".
  void count(ContentKind kind, const std::string& tenant, std::string_view outcome);

  ContentStore& store_;
  MetricsRegistry& metrics_;
  ContentServiceOptions options_;
  const Clock* clock_;
  AuthStore* tenants_ = nullptr;
  std::map<ContentKind, ContentActivator> activators_;
  std::mutex push_mutex_;  // one push or activation at a time
  static constexpr size_t kMaxTenantSeries = 256;
  std::mutex count_mutex_;
  std::set<std::string> counted_tenants_;  // tenant scopes with a series; count_mutex_
};

// Unified diff (as `diff -u` prints it, 3 lines of context) from `before` to `after`.
// Empty when the texts are equal.
std::string unifiedDiff(const std::string& before, const std::string& after,
                        const std::string& before_name, const std::string& after_name);

// Splits a message such as "rules/a.yml:12:3: text" or "rules/a.yml:12: text" into a
// problem; messages without a position keep `file` with line 0.
ContentProblem problemFromMessage(const std::string& file, std::string_view message);

}  // namespace vigil::mgmt
