#include "playbook_vm/compiler/alert_host.h"

#include <algorithm>
#include <utility>

#include "playbook_vm/compiler/compiler.h"
#include "playbook_vm/internal/str_cat.h"

namespace vigil::playbook_vm::compiler {
namespace {

using json = nlohmann::json;

constexpr int kMaxJsonDepth = 8;

AlertRunContext& context(HostCall& call) { return *static_cast<AlertRunContext*>(call.context()); }

absl::Status missingContext(std::string_view function) {
  return absl::FailedPreconditionError(
      internal::strCat(function, ": the run has no AlertRunContext; pass one to Vm::run()"));
}

// Finds `path` in `root`: the whole path as one key first, then split at dots.
const json* lookupPath(const json& root, std::string_view path) {
  if (!root.is_object()) return nullptr;
  auto exact = root.find(std::string(path));
  if (exact != root.end()) return &*exact;
  const json* node = &root;
  size_t start = 0;
  for (;;) {
    size_t dot = path.find('.', start);
    std::string part(path.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (!node->is_object()) return nullptr;
    auto it = node->find(part);
    if (it == node->end()) return nullptr;
    node = &*it;
    if (dot == std::string_view::npos) return node;
    start = dot + 1;
  }
}

bool toValue(const json& j, HostCall& call, Value& out, int depth, bool copy_strings = false) {
  switch (j.type()) {
    case json::value_t::null:
    case json::value_t::discarded:
    case json::value_t::binary:
      out = Value::null();
      return true;
    case json::value_t::boolean:
      out = Value::boolean(j.get<bool>());
      return true;
    case json::value_t::number_integer:
      out = Value::integer(j.get<int64_t>());
      return true;
    case json::value_t::number_unsigned: {
      uint64_t u = j.get<uint64_t>();
      out = u <= uint64_t{INT64_MAX} ? Value::integer(static_cast<int64_t>(u))
                                     : Value::real(static_cast<double>(u));
      return true;
    }
    case json::value_t::number_float:
      out = Value::real(j.get<double>());
      return true;
    case json::value_t::string: {
      const std::string& text = j.get_ref<const std::string&>();
      if (copy_strings || text.size() > kMaxStringConstant) {
        std::optional<Value> copy =
            call.newString(std::string_view(text).substr(0, kMaxStringConstant));
        if (!copy) return false;
        out = *copy;
        return true;
      }
      out = Value::string(text);
      return true;
    }
    case json::value_t::array: {
      std::optional<Value> list = call.newList();
      if (!list) return false;
      if (depth < kMaxJsonDepth) {
        for (const json& item : j) {
          Value element;
          if (!toValue(item, call, element, depth + 1, copy_strings)) return false;
          if (!call.append(*list, element)) return false;
        }
      }
      out = *list;
      return true;
    }
    case json::value_t::object: {
      std::optional<Value> text = call.newString(j.dump());
      if (!text) return false;
      out = *text;
      return true;
    }
  }
  out = Value::null();
  return true;
}

absl::Status heapFull(std::string_view function) {
  return absl::ResourceExhaustedError(
      internal::strCat(function, ": run heap memory limit reached"));
}

// Calls `read` with the run's alert source, or returns the error of a run without one.
template <typename Read>
absl::Status withAlert(HostCall& call, std::string_view function, Read&& read) {
  AlertRunContext& ctx = context(call);
  if (ctx.alert_source != nullptr) return read(*ctx.alert_source);
  if (ctx.alert == nullptr) return missingContext(function);
  return read(JsonAlertSource(*ctx.alert));
}

absl::Status alertField(HostCall& call, Value& result) {
  return withAlert(call, kHostAlertField, [&](const AlertSource& alert) {
    const Value& path = call.args()[0];
    if (!path.isString()) return absl::InvalidArgumentError("alert.field: path must be a string");
    // A missing field reads as null.
    if (!alert.field(path.asString(), call, result)) return heapFull(kHostAlertField);
    return absl::OkStatus();
  });
}

absl::Status alertEventHandles(HostCall& call, Value& result) {
  return withAlert(call, kHostAlertEvents, [&](const AlertSource& alert) {
    std::optional<Value> list = call.newList();
    if (!list) return heapFull(kHostAlertEvents);
    size_t count = std::min<size_t>(alert.eventCount(), kMaxListLength);
    for (size_t i = 0; i < count; ++i) {
      if (!call.append(*list, Value::integer(static_cast<int64_t>(i)))) {
        return heapFull(kHostAlertEvents);
      }
    }
    result = *list;
    return absl::OkStatus();
  });
}

absl::Status eventField(HostCall& call, Value& result) {
  return withAlert(call, kHostEventField, [&](const AlertSource& alert) {
    const Value& handle = call.args()[0];
    const Value& path = call.args()[1];
    if (!handle.isInt() || handle.asInt() < 0 ||
        static_cast<size_t>(handle.asInt()) >= alert.eventCount()) {
      return absl::InvalidArgumentError(internal::strCat(
          "event.field: ", valueToString(handle), " is not an event of this alert"));
    }
    if (!path.isString()) return absl::InvalidArgumentError("event.field: path must be a string");
    if (!alert.eventField(static_cast<size_t>(handle.asInt()), path.asString(), call, result)) {
      return heapFull(kHostEventField);
    }
    return absl::OkStatus();
  });
}

absl::Status intelMatch(HostCall& call, Value& result) {
  AlertRunContext& ctx = context(call);
  const Value& value = call.args()[0];
  result = Value::boolean(value.isString() && ctx.intel && ctx.intel(value.asString()));
  return absl::OkStatus();
}

absl::Status textContains(HostCall& call, Value& result) {
  const Value& text = call.args()[0];
  const Value& part = call.args()[1];
  if (!text.isString() || !part.isString()) {
    return absl::InvalidArgumentError(internal::strCat("contains() needs two strings, got ",
                                                       valueTypeName(text.type()), " and ",
                                                       valueTypeName(part.type())));
  }
  result = Value::boolean(text.asString().find(part.asString()) != std::string_view::npos);
  return absl::OkStatus();
}

std::string messageText(const Value& value) {
  return value.isString() ? std::string(value.asString()) : valueToString(value);
}

absl::Status logLine(HostCall& call, Value&) {
  AlertRunContext& ctx = context(call);
  if (ctx.log) ctx.log(messageText(call.args()[0]));
  return absl::OkStatus();
}

absl::Status failRun(HostCall& call, Value&) {
  return absl::AbortedError(messageText(call.args()[0]));
}

absl::Status performAction(HostCall& call, Value& result) {
  AlertRunContext& ctx = context(call);
  const Value& name = call.args()[0];
  const Value& params = call.args()[1];
  if (!name.isString() || !params.isList()) {
    return absl::InvalidArgumentError("action: needs a name and a parameter list");
  }
  if (ctx.connector == nullptr) {
    return absl::FailedPreconditionError(
        internal::strCat("no connector is configured for action ", name.asString()));
  }
  return ctx.connector->perform(name.asString(), *params.asList(), call, result);
}

}  // namespace

bool JsonAlertSource::field(std::string_view path, HostCall& call, Value& out) const {
  const json* found = lookupPath(alert_, path);
  out = Value::null();
  return found == nullptr || toValue(*found, call, out, 0);
}

const json* JsonAlertSource::events() const {
  auto it = alert_.find("events");
  return it != alert_.end() && it->is_array() ? &*it : nullptr;
}

size_t JsonAlertSource::eventCount() const {
  const json* events = this->events();
  return events == nullptr ? 0 : events->size();
}

bool JsonAlertSource::eventField(size_t index, std::string_view path, HostCall& call,
                                 Value& out) const {
  const json* found = lookupPath((*events())[index], path);
  out = Value::null();
  return found == nullptr || toValue(*found, call, out, 0);
}

bool jsonToValue(const nlohmann::json& j, HostCall& call, Value& out) {
  return toValue(j, call, out, 0);
}

bool jsonToHeapValue(const nlohmann::json& j, HostCall& call, Value& out) {
  return toValue(j, call, out, 0, /*copy_strings=*/true);
}

namespace {

json toJson(const Value& value, int depth) {
  switch (value.type()) {
    case ValueType::kNull:
      return nullptr;
    case ValueType::kBool:
      return value.asBool();
    case ValueType::kInt:
      return value.asInt();
    case ValueType::kDouble:
      return value.asDouble();
    case ValueType::kString:
      return std::string(value.asString());
    case ValueType::kList: {
      if (depth >= kMaxJsonDepth) return nullptr;
      json array = json::array();
      const List& list = *value.asList();
      for (uint32_t i = 0; i < list.size; ++i) array.push_back(toJson(list.items[i], depth + 1));
      return array;
    }
  }
  return nullptr;
}

}  // namespace

nlohmann::json valueToJson(const Value& value) { return toJson(value, 0); }

absl::Status registerAlertHost(HostRegistry& registry) {
  const struct {
    std::string_view name;
    uint32_t arity;
    HostFunction function;
  } kFunctions[] = {
      {kHostAlertField, 1, alertField}, {kHostAlertEvents, 0, alertEventHandles},
      {kHostEventField, 2, eventField}, {kHostIntelMatch, 1, intelMatch},
      {kHostContains, 2, textContains}, {kHostAction, 2, performAction},
      {kHostLog, 1, logLine},           {kHostFail, 1, failRun},
  };
  for (const auto& f : kFunctions) {
    if (absl::Status s = registry.add(f.name, f.arity, f.function); !s.ok()) return s;
  }
  return absl::OkStatus();
}

bool triggerMatches(const Trigger& trigger, const nlohmann::json& alert) {
  if (!trigger.has_trigger || !alert.is_object()) return false;
  auto text = [&](const char* key) -> std::string {
    auto it = alert.find(key);
    return it != alert.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  auto contains = [](const std::vector<std::string>& list, const std::string& value) {
    return std::find(list.begin(), list.end(), value) != list.end();
  };
  if (!trigger.rule_ids.empty() && !contains(trigger.rule_ids, text("rule_id"))) return false;
  if (!trigger.tenants.empty() && !contains(trigger.tenants, text("tenant"))) return false;
  if (!trigger.tags.empty()) {
    auto tags = alert.find("tags");
    if (tags == alert.end() || !tags->is_array()) return false;
    bool any = std::any_of(tags->begin(), tags->end(), [&](const json& tag) {
      return tag.is_string() && contains(trigger.tags, tag.get<std::string>());
    });
    if (!any) return false;
  }
  if (trigger.min_severity != Severity::kInformational) {
    Severity severity = Severity::kInformational;
    auto it = alert.find("severity");
    if (it == alert.end()) return false;
    if (it->is_string()) {
      if (!parseSeverity(it->get<std::string>(), severity)) return false;
    } else if (it->is_number_integer() && it->get<int64_t>() >= 0 && it->get<int64_t>() <= 4) {
      severity = static_cast<Severity>(it->get<int64_t>());
    } else {
      return false;
    }
    if (severity < trigger.min_severity) return false;
  }
  return true;
}

std::string describeAction(std::string_view action, const List& params) {
  std::string text = internal::strCat(action, "(");
  for (uint32_t i = 0; i + 1 < params.size; i += 2) {
    if (i != 0) text += ", ";
    text += internal::strCat(messageText(params.items[i]), "=", valueToString(params.items[i + 1]));
  }
  text += ")";
  return text;
}

RecordingConnector::RecordingConnector(nlohmann::json results, std::ostream* out)
    : results_(std::move(results)), out_(out) {
  if (!results_.is_object()) results_ = json::object();
}

absl::Status RecordingConnector::perform(std::string_view action, const List& params,
                                         HostCall& call, Value& result) {
  calls_.push_back(describeAction(action, params));
  if (out_ != nullptr) *out_ << "  action " << calls_.back();
  auto configured = results_.find(std::string(action));
  if (configured != results_.end() && configured->is_object() && configured->contains("error")) {
    std::string message = (*configured)["error"].is_string()
                              ? (*configured)["error"].get<std::string>()
                              : (*configured)["error"].dump();
    if (out_ != nullptr) *out_ << " -> error: " << message << "\n";
    return absl::UnavailableError(message);
  }
  if (configured != results_.end()) {
    if (!toValue(*configured, call, result, 0)) return heapFull(kHostAction);
  } else {
    bool lists = action.find("search") != std::string_view::npos ||
                 action.find("query") != std::string_view::npos ||
                 action.find("list") != std::string_view::npos;
    if (lists) {
      std::optional<Value> empty = call.newList();
      if (!empty) return heapFull(kHostAction);
      result = *empty;
    } else {
      result = Value::string("ok");
    }
  }
  if (out_ != nullptr) *out_ << " -> " << valueToString(result) << "\n";
  return absl::OkStatus();
}

}  // namespace vigil::playbook_vm::compiler
