// The alert as playbooks read it, served to the VM straight from a correlate::Alert instead
// of a JSON object built for each run. Not part of the public surface of mgmt.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "correlate/alert.h"
#include "playbook_vm/compiler/alert_host.h"

namespace vigil::mgmt::internal {

// Presents one alert to the alert host functions with the fields, values and lookup rules
// of the object refreshAlertJson() builds, and writes that object's JSON text. reset()
// points the view at an alert. The view reads the alert's strings in place, so the alert
// must stay alive and unchanged until the next reset(). A worker keeps one view, which
// allocates only when an alert has more group-by fields, tags or evidence lines than the
// alerts before it, or texts that are not valid UTF-8.
class AlertView final : public playbook_vm::compiler::AlertSource {
 public:
  void reset(const correlate::Alert& alert, int64_t inbox_id);

  // Replaces `out` with the JSON text of the alert, byte for byte what dumpJsonTo() writes
  // for the object refreshAlertJson() builds.
  void writeJson(std::string& out) const;

  bool field(std::string_view path, playbook_vm::HostCall& call,
             playbook_vm::Value& out) const override;
  size_t eventCount() const override { return evidence_.size(); }
  bool eventField(size_t index, std::string_view path, playbook_vm::HostCall& call,
                  playbook_vm::Value& out) const override;

  // Top-level member kinds. Public only for the tables in alert_view.cc.
  enum class Kind : uint8_t {
    kId,
    kRuleId,
    kRuleTitle,
    kRulesVersion,
    kLevel,  // also "severity"
    kTenant,
    kTags,
    kFirstEvent,
    kLastEvent,
    kDetected,
    kEventCount,
    kEvidence,
    kIndicatorHits,
    kMetric,
    kInboxId,
    kGroup,
    kEvents,
    kGroupValue,  // a group-by field copied to the top level
  };
  // One member of the object: its key and, for kGroupValue, the value.
  struct Member {
    std::string_view key;
    Kind kind;
    std::string_view value;
  };

 private:
  // The member stored under `key` at the top level, or null.
  const Member* findMember(std::string_view key) const;
  // The group-by member `key` (its last value), or null.
  const Member* findGroup(std::string_view key) const;
  // Sets `out` to the value of a top-level member.
  bool memberValue(const Member& member, playbook_vm::HostCall& call,
                   playbook_vm::Value& out) const;
  std::string_view text(std::string_view raw);
  void writeGroup(std::string& out) const;
  void writeMember(const Member& member, std::string& out) const;

  const correlate::Alert* alert_ = nullptr;
  int64_t inbox_id_ = 0;
  bool has_metric_ = false;
  // Texts of the alert with invalid UTF-8 replaced as alertToJson() does. A view points
  // into the alert when its text is valid, and into `replaced_` otherwise.
  std::string_view id_, rule_id_, rule_title_, level_, tenant_;
  std::vector<std::string_view> tags_, evidence_, indicator_hits_;
  std::deque<std::string> replaced_;
  char times_[3][40] = {};  // first_event, last_event, detected as RFC 3339
  std::string_view time_text_[3];
  std::vector<Member> group_;    // sorted by key, one per field, its last value
  std::vector<Member> members_;  // every top-level member, sorted by key
  mutable std::string scratch_;  // JSON text of objects handed to the VM
};

}  // namespace vigil::mgmt::internal
