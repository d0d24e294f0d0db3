// The built-in default-case playbook: the text of configs/playbooks/default_case.yml,
// compiled into the library at build time.
#pragma once

#include <string_view>

namespace vigil::mgmt {

// Its name (the `name:` of the file); a playbook under playbooks.paths may not reuse it.
inline constexpr std::string_view kDefaultCasePlaybookName = "default-case";

// The YAML source.
std::string_view defaultCasePlaybookSource();

}  // namespace vigil::mgmt
