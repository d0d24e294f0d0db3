// The content store: every version of the rule sets, analyst indicator lists and
// playbooks pushed through the API, in SQLite. A version holds its files as a map from
// path to text, the principal who pushed it, when, the SHA-256 of the files, and whether
// it is the active one. At most one version per (kind, tenant) is active.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct sqlite3;

namespace vigil::mgmt {

enum class ContentKind { kRules, kIntel, kPlaybooks };

const char* contentKindName(ContentKind kind);  // "rules", "intel", "playbooks"
// Parses a name above. InvalidArgument names the value and the accepted names.
absl::StatusOr<ContentKind> parseContentKind(absl::string_view name);

// Tenant value of content that applies to every tenant (rules and indicator lists).
inline constexpr absl::string_view kAllTenants = "*";

using ContentFiles = std::map<std::string, std::string>;  // path -> text

struct ContentVersion {
  ContentKind kind = ContentKind::kRules;
  std::string tenant;
  int64_t version = 0;  // 1, 2, ... per (kind, tenant)
  std::string author;   // Principal::subject of the push
  int64_t created_ns = 0;
  int64_t activated_ns = 0;  // last activation; 0 when never active
  std::string activated_by;  // Principal::subject of the last activation; "" when never active
  std::string sha256;        // lowercase hex of contentHash(files)
  bool active = false;
  ContentFiles files;  // empty in list() results
};

// One activation of a version: a push, an activation of a stored version or a rollback.
// Rows are only ever appended, so the table keeps every activation of a version, while
// ContentVersion keeps only the last.
struct ContentActivation {
  int64_t seq = 0;  // 1, 2, ... over the whole store, in activation order
  ContentKind kind = ContentKind::kRules;
  std::string tenant;
  int64_t version = 0;
  // "activate" (newer than the version it replaced, or nothing was active), "rollback"
  // (older), "reactivate" (the active version again), or "imported" for the last
  // activation of each version in a store written before this history existed.
  std::string action;
  std::string activated_by;  // Principal::subject
  int64_t activated_ns = 0;
  std::string sha256;            // content hash of the activated version
  int64_t previous_version = 0;  // version active before; 0 when none or unknown
};

// SHA-256 over the files in path order, each as its path length, path, text length and
// text, so moving text from one file to another changes the hash. Lowercase hex.
std::string contentHash(const ContentFiles& files);

class ContentStore {
 public:
  // Opens or creates the database at `path` (WAL, synchronous=FULL).
  static absl::StatusOr<std::unique_ptr<ContentStore>> open(const std::string& path);
  ~ContentStore();
  ContentStore(const ContentStore&) = delete;
  ContentStore& operator=(const ContentStore&) = delete;

  // Stores a new, inactive version numbered one past the highest of (kind, tenant).
  absl::StatusOr<ContentVersion> add(ContentKind kind, absl::string_view tenant,
                                     absl::string_view author, const ContentFiles& files,
                                     int64_t now_ns);

  // Marks `version` active and every other version of (kind, tenant) inactive, records
  // `activated_by` and `now_ns` on it and appends a ContentActivation row, in one
  // transaction. NotFound for an unknown version.
  absl::Status activate(ContentKind kind, absl::string_view tenant, int64_t version,
                        absl::string_view activated_by, int64_t now_ns);

  // One version with its files. NotFound names the kind, tenant and version.
  absl::StatusOr<ContentVersion> get(ContentKind kind, absl::string_view tenant,
                                     int64_t version);

  // Every version of (kind, tenant), newest first, without files.
  absl::StatusOr<std::vector<ContentVersion>> list(ContentKind kind, absl::string_view tenant);

  // The active version of (kind, tenant) with its files, or nullopt.
  absl::StatusOr<std::optional<ContentVersion>> active(ContentKind kind,
                                                       absl::string_view tenant);

  // Every activation of (kind, tenant), newest first.
  absl::StatusOr<std::vector<ContentActivation>> listActivations(ContentKind kind,
                                                                 absl::string_view tenant);

  // Tenants that have an active version of `kind`.
  absl::StatusOr<std::vector<std::string>> activeTenants(ContentKind kind);

 private:
  ContentStore(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}
  absl::Status exec(const char* sql);
  absl::Status migrate();
  absl::Status addActivatedByColumn();
  absl::StatusOr<bool> hasTable(absl::string_view name);
  absl::Status importActivations();

  std::string path_;
  sqlite3* db_ = nullptr;
  std::mutex mutex_;  // one statement at a time on the connection
};

}  // namespace vigil::mgmt
