// Checks shared by the configuration section readers. Each error names the file, the line
// and the dotted key, and lists what would be accepted.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <filesystem>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace vigil::mgmt::internal {

struct YamlReader {
  std::string origin;    // the file name errors start with
  std::string base_dir;  // relative paths are taken from here

  absl::Status error(const YAML::Node& node, const std::string& key,
                     const std::string& what) const {
    return absl::InvalidArgumentError(
        absl::StrCat(origin, ":", node.Mark().line + 1, ": ", key, ": ", what));
  }

  // Returns the dotted path of `key` under `where`; top-level keys have no leading dot.
  static std::string keyPath(const std::string& where, const char* key) {
    return where.empty() ? std::string(key) : where + "." + key;
  }

  // Returns the node whose line an error about `map[key]` names. That is the key itself
  // when the value is empty (`workers:`), because yaml-cpp marks an empty value at the
  // next token, which may be on the next line.
  static YAML::Node lineNode(const YAML::Node& map, const char* key, const YAML::Node& value) {
    if (!value.IsNull() || !map.IsMap()) return value;
    for (const auto& kv : map) {
      if (kv.first.IsScalar() && kv.first.Scalar() == key) return kv.first;
    }
    return value;
  }

  // Describes a value that has the wrong type: 'TEXT' for a scalar, otherwise its kind.
  static std::string describe(const YAML::Node& value) {
    if (value.IsScalar()) return absl::StrCat("'", value.Scalar(), "'");
    if (value.IsNull()) return "an empty value";
    if (value.IsSequence()) return "a list";
    return "a mapping";
  }

  // Fails on a node that is not a mapping, on a key given twice (yaml-cpp would keep the
  // first silently) and on a key outside `allowed`.
  absl::Status checkKeys(const YAML::Node& map, const std::string& where,
                         const std::set<std::string>& allowed) const {
    if (!map.IsMap()) {
      if (where.empty()) {
        return error(map, "top level",
                     absl::StrCat("must be a mapping of sections such as ",
                                  absl::StrJoin(allowed, ", "), ", not ", describe(map)));
      }
      return error(map, where, absl::StrCat("must be a mapping, not ", describe(map)));
    }
    std::set<std::string> seen;
    for (const auto& kv : map) {
      const std::string key = kv.first.as<std::string>();
      const std::string path = where.empty() ? key : where + "." + key;
      if (!seen.insert(key).second) {
        return error(kv.first, path, "given twice; remove one of the two entries");
      }
      if (!allowed.count(key)) {
        return error(kv.first, path,
                     absl::StrCat("unknown key; accepted keys: ", absl::StrJoin(allowed, ", ")));
      }
    }
    return absl::OkStatus();
  }

  // The readers below leave `out` unchanged when `key` is absent.
  absl::Status readString(const YAML::Node& map, const std::string& where, const char* key,
                          std::string& out) const {
    YAML::Node n = map[key];
    if (!n) return absl::OkStatus();
    if (!n.IsScalar()) {
      return error(lineNode(map, key, n), keyPath(where, key),
                   absl::StrCat("must be a string, not ", describe(n)));
    }
    out = n.Scalar();
    return absl::OkStatus();
  }

  absl::Status readChoice(const YAML::Node& map, const std::string& where, const char* key,
                          const std::set<std::string>& choices, std::string& out) const {
    if (auto st = readString(map, where, key, out); !st.ok()) return st;
    if (!choices.count(out)) {
      return error(map[key] ? map[key] : map, keyPath(where, key),
                   absl::StrCat("'", out, "' is not one of ", absl::StrJoin(choices, ", ")));
    }
    return absl::OkStatus();
  }

  template <typename T>
  absl::Status readNumber(const YAML::Node& map, const std::string& where, const char* key,
                          T min, T max, T& out) const {
    YAML::Node n = map[key];
    if (!n) return absl::OkStatus();
    T value{};
    bool ok = n.IsScalar();
    if (ok) {
      try {
        value = n.as<T>();
      } catch (const YAML::Exception&) {
        ok = false;
      }
    }
    if constexpr (std::is_floating_point_v<T>) {
      // NaN compares false with both bounds, so it needs its own check.
      if (ok && !std::isfinite(value)) ok = false;
    }
    if (!ok || value < min || value > max) {
      return error(lineNode(map, key, n), keyPath(where, key),
                   absl::StrCat(describe(n), " is not a number in [", min, ", ", max, "]"));
    }
    out = value;
    return absl::OkStatus();
  }

  // Reads a string or a list of strings.
  absl::Status readStringList(const YAML::Node& map, const std::string& where, const char* key,
                              std::vector<std::string>& out) const {
    YAML::Node n = map[key];
    if (!n) return absl::OkStatus();
    if (n.IsScalar()) {
      out = {n.Scalar()};
      return absl::OkStatus();
    }
    if (!n.IsSequence()) {
      return error(lineNode(map, key, n), keyPath(where, key),
                   absl::StrCat("must be a string or a list, not ", describe(n)));
    }
    out.clear();
    for (const auto& item : n) {
      if (!item.IsScalar()) return error(item, keyPath(where, key), "list items must be strings");
      out.push_back(item.Scalar());
    }
    return absl::OkStatus();
  }

  // Returns `path` joined to base_dir when it is relative. An empty path stays empty.
  std::string resolve(const std::string& path) const {
    if (path.empty() || std::filesystem::path(path).is_absolute()) return path;
    return (std::filesystem::path(base_dir) / path).lexically_normal().string();
  }
};

}  // namespace vigil::mgmt::internal
