#include "mgmt/yaml_paths.h"

#include <algorithm>
#include <filesystem>
#include <set>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace vigil::mgmt {

absl::StatusOr<std::vector<std::string>> expandYamlPaths(const std::vector<std::string>& paths,
                                                         const std::string& key,
                                                         const std::string& noun) {
  std::vector<std::string> files;
  // A file reached twice, named and inside a named folder or in a folder listed twice, is
  // taken once. Loaded twice, its rules or playbooks would clash with themselves.
  std::set<std::filesystem::path> seen_files;
  auto take = [&](const std::filesystem::path& file) {
    std::error_code ec;
    std::filesystem::path canonical = std::filesystem::weakly_canonical(file, ec);
    if (ec) canonical = file;
    if (seen_files.insert(canonical).second) files.push_back(file.string());
  };
  for (const std::string& path : paths) {
    if (path.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(key, ": an entry is empty; give a ", noun, " file or a folder of them"));
    }
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
      std::vector<std::string> found;
      std::filesystem::recursive_directory_iterator it(path, ec);
      for (; !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
        // Hidden entries (".git", an editor's ".rule.yml.swp") are skipped, folders with
        // all they hold.
        if (it->path().filename().string().starts_with(".")) {
          if (it->is_directory()) it.disable_recursion_pending();
          continue;
        }
        const std::string ext = absl::AsciiStrToLower(it->path().extension().string());
        if (it->is_regular_file() && (ext == ".yml" || ext == ".yaml")) {
          found.push_back(it->path().string());
        }
      }
      if (ec) {
        return absl::FailedPreconditionError(
            absl::StrCat(key, ": cannot read folder ", path, ": ", ec.message()));
      }
      if (found.empty()) {
        return absl::NotFoundError(absl::StrCat(
            key, ": folder ", path,
            " contains no *.yml or *.yaml file (sub-folders included); check the path"));
      }
      std::sort(found.begin(), found.end());
      for (const std::string& file : found) take(file);
    } else if (std::filesystem::is_regular_file(path, ec)) {
      take(path);
    } else {
      return absl::NotFoundError(
          absl::StrCat(key, ": ", path, " is neither a ", noun, " file nor a folder"));
    }
  }
  return files;
}

}  // namespace vigil::mgmt
