// The ContentActivator of each content kind that vigild serves: rule sets (swapped into
// the pipeline by RuleReloader), the analyst indicator list (published by IntelManager)
// and playbooks (compiled and verified here, handed to whatever runs them).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "mgmt/config.h"
#include "mgmt/content_service.h"

namespace vigil::playbook_vm {
class Program;
}

namespace vigil::mgmt {

class IntelManager;
class RuleReloader;

// Returns the configuration that rule builds use now (field mappings, log sources).
using ConfigSource = std::function<DaemonConfig()>;

// Rules: every file is a Sigma YAML file (several documents allowed), pushed for every
// tenant (kAllTenants) or for one tenant, whose rules see only its events. Commit swaps
// in an engine that combines the rules for every tenant with each tenant's rules; alerts
// carry the version of their rule's scope as rules_version. Rules are deletable: an
// empty file set removes one tenant's rules, and remove_item drops the YAML documents of
// one rule id (or title). The dry run takes "events" as raw log lines (strings) or
// {"raw": LINE, "tenant": NAME} objects (a line without a tenant gets the pushed tenant,
// or "default"), parses them as a source with format auto would, and returns every alert
// the pushed rules raise.
ContentActivator rulesActivator(RuleReloader& rules, ConfigSource config);

// Intel: an analyst list in the plain list format, one indicator per line, in one or
// more files that are joined in path order, pushed for every tenant (kAllTenants) or for
// one tenant, whose events alone match it. Every rejected line is a problem with its
// file and line, and fails the push. Commit replaces the analyst list of the pushed
// scope and leaves the other tenants' lists alone, so versions and rollback are per
// tenant. The dry run builds the files into an indicator set of its own, owned by the
// pushed tenant, takes "events" as the rules dry run does (raw lines or {"raw",
// "tenant"} objects; a tenant's dry run accepts only its own tenant) and returns every
// match of every event with its tenant, indicator, type, feed, field and score; the live
// snapshot is not touched.
ContentActivator intelActivator(IntelManager& intel);

// A compiled playbook set as one activation hands it over.
struct PlaybookBundle {
  std::string tenant;  // kAllTenants for the set of every tenant
  int64_t version = 0;
  struct Playbook {
    std::string path;  // the file's path in the push
    std::string name;  // the playbook's `name:`
    std::vector<uint8_t> module;  // the compiled module, for loadProgram()
    std::shared_ptr<const playbook_vm::Program> program;  // verified against the alert host
  };
  std::vector<Playbook> playbooks;
};

// Receives each activated playbook set; returns an error when it cannot take it, which
// fails the activation. Called under the content push lock, one call at a time.
using PlaybookListener = std::function<absl::Status(std::shared_ptr<const PlaybookBundle>)>;

// Appends a problem for each playbook of a compiled set that its receiver cannot take (a
// name clash). Must not change live state.
using PlaybookCheck =
    std::function<void(const PlaybookBundle& bundle, std::vector<ContentProblem>& problems)>;

// The receiver of compiled playbook sets and the scope of pushes.
struct PlaybookActivation {
  PlaybookListener listener;  // empty: versions are stored and nothing runs them
  PlaybookCheck check;        // optional, runs in prepare, before the version is stored
  bool tenant_scoped = false;
  bool all_tenants_scope = false;
};

// Playbooks: every file is one playbook in YAML. Each is compiled and verified against
// the alert host functions, then passed to `check`. A problem of either rejects the
// push before anything is stored. Commit passes the set to `listener`. Playbooks are
// deletable: an empty file set removes one scope's pushed playbooks, and remove_item
// drops the file of the playbook with the given `name:`. The dry run takes
// "events" as alert objects and returns, per alert and playbook, whether the trigger
// matched and every step, with connector calls recorded and not sent.
ContentActivator playbooksActivator(PlaybookActivation activation);
ContentActivator playbooksActivator(PlaybookListener listener, bool tenant_scoped);

}  // namespace vigil::mgmt
