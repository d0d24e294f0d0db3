// The playbook runner's pushed playbooks: checking a pushed set against the configured
// playbooks, loading it, and publishing the PlaybookSet that alerts are matched against.
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "mgmt/content_activators.h"
#include "mgmt/content_store.h"
#include "mgmt/internal/playbook_runner_util.h"
#include "mgmt/playbook_runner.h"

namespace vigil::mgmt {
namespace {

namespace pb = playbook_vm;

bool forEveryTenant(const PlaybookBundle& bundle) { return bundle.tenant == kAllTenants; }

// The name runs of a pushed playbook carry.
std::string pushedName(const PlaybookBundle& bundle, const std::string& name) {
  return forEveryTenant(bundle) ? name : absl::StrCat(bundle.tenant, "/", name);
}

}  // namespace

void PlaybookRunner::checkPushed(const PlaybookBundle& bundle,
                                 std::vector<ContentProblem>& problems) const {
  std::map<std::string, const std::string*> paths;  // by playbook name
  for (const PlaybookBundle::Playbook& playbook : bundle.playbooks) {
    auto [first, added] = paths.emplace(playbook.name, &playbook.path);
    if (!added) {
      problems.push_back({playbook.path, 0, 0,
                          absl::StrCat("playbook name '", playbook.name, "' is also the name of ",
                                       *first->second,
                                       " in this push; give each playbook its own name")});
      continue;
    }
    if (forEveryTenant(bundle) && configured_names_.count(playbook.name) != 0) {
      problems.push_back(
          {playbook.path, 0, 0,
           absl::StrCat("playbook name '", playbook.name,
                        "' is the name of a configured playbook (under playbooks.paths, or the "
                        "built-in default-case playbook); rename the pushed playbook, or push it "
                        "for one tenant with ?tenant=NAME, where it runs as NAME/",
                        playbook.name)});
    }
  }
}

absl::StatusOr<std::vector<PlaybookSet::Entry>> PlaybookRunner::loadPushed(
    const PlaybookBundle& bundle) const {
  std::vector<PlaybookSet::Entry> out;
  for (const PlaybookBundle::Playbook& playbook : bundle.playbooks) {
    // Loaded again with the runner's own host registry, which its VM runs with.
    absl::StatusOr<std::unique_ptr<pb::Program>> program =
        pb::loadProgram(playbook.module, registry_);
    if (!program.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(playbook.path, ": ", program.status().message()));
    }
    if (!(*program)->trigger().has_trigger) {
      return absl::InvalidArgumentError(absl::StrCat(playbook.path, ": playbook has no trigger"));
    }
    auto active = std::make_shared<ActivePlaybook>();
    active->loaded.name = pushedName(bundle, playbook.name);
    active->loaded.path = playbook.path;
    active->loaded.hash = internal::programHash(**program);
    active->loaded.module = playbook.module;
    active->loaded.program = std::move(*program);
    active->tenant = forEveryTenant(bundle) ? std::string() : bundle.tenant;
    active->version = bundle.version;
    out.push_back(std::move(active));
  }
  return out;
}

absl::Status PlaybookRunner::storeModules(const std::vector<PlaybookSet::Entry>& playbooks) {
  for (const PlaybookSet::Entry& playbook : playbooks) {
    const LoadedPlaybook& loaded = playbook->loaded;
    if (absl::Status st = store_->putModule(loaded.hash, loaded.name, loaded.module); !st.ok()) {
      return st;
    }
  }
  return absl::OkStatus();
}

absl::Status PlaybookRunner::activatePushed(const PlaybookBundle& bundle) {
  std::vector<ContentProblem> problems;
  checkPushed(bundle, problems);
  if (!problems.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(problems[0].file, ": ", problems[0].message));
  }
  absl::StatusOr<std::vector<PlaybookSet::Entry>> loaded = loadPushed(bundle);
  if (!loaded.ok()) return loaded.status();

  std::lock_guard<std::mutex> lock(push_mu_);
  if (modules_stored_) {
    // Before the set is published, so every run it starts can resume after a restart.
    if (absl::Status st = storeModules(*loaded); !st.ok()) return st;
  }
  for (const PlaybookSet::Entry& playbook : *loaded) metricsFor(playbook->loaded.name);
  const size_t count = loaded->size();

  auto next = std::make_shared<PlaybookSet>(*active_.load());
  if (forEveryTenant(bundle)) {
    next->every_tenant = std::move(*loaded);
  } else if (loaded->empty()) {
    next->tenants.erase(bundle.tenant);
  } else {
    next->tenants[bundle.tenant] = std::move(*loaded);
  }
  active_.store(std::move(next));
  VIGIL_LOG_INFO("pushed playbooks active tenant={} version={} playbooks={}", bundle.tenant,
                 bundle.version, count);
  return absl::OkStatus();
}

std::shared_ptr<const pb::Program> PlaybookRunner::activeProgram(const std::string& hash) const {
  std::shared_ptr<const PlaybookSet> set = active_.load();
  auto find = [&hash](const std::vector<PlaybookSet::Entry>& playbooks)
      -> std::shared_ptr<const pb::Program> {
    for (const PlaybookSet::Entry& playbook : playbooks) {
      if (playbook->loaded.hash == hash) return playbook->loaded.program;
    }
    return nullptr;
  };
  if (auto program = find(set->configured)) return program;
  if (auto program = find(set->every_tenant)) return program;
  for (const auto& [tenant, playbooks] : set->tenants) {
    if (auto program = find(playbooks)) return program;
  }
  return nullptr;
}

}  // namespace vigil::mgmt
