// "vigilctl playbooks compile|disasm|run": compiles playbooks to modules, prints their
// bytecode, and dry-runs them against an alert file with recording connectors. All
// three work offline; none contacts the API or a connector.
#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "mgmt/cmd/vigilctl_client.h"
#include "playbook_vm/compiler/alert_host.h"
#include "playbook_vm/compiler/compiler.h"
#include "playbook_vm/compiler/dry_run.h"
#include "playbook_vm/disassembler.h"

namespace vigil::ctl {
namespace {

namespace pb = vigil::playbook_vm;
namespace pbc = vigil::playbook_vm::compiler;

struct PlaybookCommandOptions {
  std::string input;
  std::string output;
  std::string alert;
  bool dry_run = false;
  std::string approval = "approved";
  std::vector<std::string> results;  // ACTION=JSON
  std::string results_file;
  std::vector<std::string> indicators;
  uint64_t max_steps = 1'000'000;
};

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(absl::StrCat("cannot read ", path, ": ", std::strerror(errno)), 2);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string toStd(absl::string_view text) { return std::string(text.data(), text.size()); }

// Whether loadPlaybook() reads `bytes` from `path` as a module rather than as playbook
// source. A module starts with a 4-byte offset and the file identifier VGPB. A file with a
// NUL byte among its first 4 bytes that is not UTF-16 text is also taken as a module, and
// so is a .vgpb file too short to tell (under 8 bytes). So an empty, truncated or damaged
// module is reported as such, not as invalid YAML.
// NOTE: UTF-32 playbook source without a byte order mark is therefore taken as a module.
bool isModule(const std::string& path, const std::string& bytes) {
  if (bytes.size() >= 8 && bytes.compare(4, 4, pb::kModuleMagic) == 0) return true;
  if (bytes.size() < 8 && std::filesystem::path(path).extension() == ".vgpb") return true;
  std::string_view head = std::string_view(bytes).substr(0, 4);
  if (head.find('\0') == std::string_view::npos) return false;
  // UTF-16 text has a byte order mark (UTF-32 too) or, for ASCII, a NUL in every other
  // byte.
  if (head.starts_with("\xFF\xFE") || head.starts_with("\xFE\xFF") ||
      head == std::string_view("\0\0\xFE\xFF", 4)) {
    return false;
  }
  if (head.size() == 4) {
    const bool little = head[0] != 0 && head[1] == 0 && head[2] != 0 && head[3] == 0;
    const bool big = head[0] == 0 && head[1] != 0 && head[2] == 0 && head[3] != 0;
    if (little || big) return false;
  }
  return true;
}

const pb::HostRegistry& alertHost() {
  static const pb::HostRegistry* registry = [] {
    auto* r = new pb::HostRegistry();
    absl::Status s = pbc::registerAlertHost(*r);
    if (!s.ok()) fail(toStd(s.message()));
    return r;
  }();
  return *registry;
}

// Loads PATH as a module, or compiles it first when it is playbook source.
std::unique_ptr<pb::Program> loadPlaybook(const std::string& path) {
  std::string bytes = readFile(path);
  std::vector<uint8_t> module;
  if (isModule(path, bytes)) {
    module.assign(bytes.begin(), bytes.end());
  } else {
    absl::StatusOr<pbc::CompiledPlaybook> compiled = pbc::compilePlaybook(bytes, path);
    if (!compiled.ok()) fail(toStd(compiled.status().message()));
    module = std::move(compiled->module);
  }
  absl::StatusOr<std::unique_ptr<pb::Program>> program = pb::loadProgram(module, alertHost());
  if (!program.ok()) fail(absl::StrCat(path, ": ", toStd(program.status().message())));
  return std::move(*program);
}

void runCompile(const PlaybookCommandOptions& options) {
  std::string source = readFile(options.input);
  if (isModule(options.input, source)) {
    fail(absl::StrCat(options.input,
                      ": this is a compiled module (or a damaged one), not "
                      "playbook source; compile the .yml file, or use disasm or run on a module"));
  }
  absl::StatusOr<pbc::CompiledPlaybook> compiled = pbc::compilePlaybook(source, options.input);
  if (!compiled.ok()) fail(toStd(compiled.status().message()));
  // Verify before writing, so a module on disk always loads.
  absl::StatusOr<std::unique_ptr<pb::Program>> program =
      pb::loadProgram(compiled->module, alertHost());
  if (!program.ok()) fail(absl::StrCat(options.input, ": ", toStd(program.status().message())));
  std::string out = options.output;
  if (out.empty()) out = std::filesystem::path(options.input).replace_extension(".vgpb").string();
  std::ofstream file(out, std::ios::binary | std::ios::trunc);
  file.write(reinterpret_cast<const char*>(compiled->module.data()),
             static_cast<std::streamsize>(compiled->module.size()));
  file.close();
  if (!file) fail(absl::StrCat("cannot write ", out), 2);
  std::cout << "compiled " << compiled->name << ": " << (*program)->code().size()
            << " instructions, " << (*program)->constants().size() << " constants, "
            << (*program)->registerCount() << " registers, " << compiled->module.size()
            << " bytes -> " << out << "\n";
}

void runDisasm(const PlaybookCommandOptions& options) {
  std::cout << pb::disassemble(*loadPlaybook(options.input));
}

nlohmann::json parseJson(const std::string& text, const std::string& source_name) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    fail(absl::StrCat(source_name, " is not valid JSON: ", e.what()), 2);
  }
}

void runDryRun(const PlaybookCommandOptions& options) {
  if (!options.dry_run) {
    fail("only --dry-run is supported: vigilctl never calls real connectors", 2);
  }
  if (options.approval != "approved" && options.approval != "rejected" &&
      options.approval != "timeout") {
    fail(absl::StrCat("invalid --approval '", options.approval,
                      "'; use approved, rejected or timeout"),
         2);
  }
  std::unique_ptr<pb::Program> program = loadPlaybook(options.input);
  nlohmann::json alert = parseJson(readFile(options.alert), options.alert);
  if (!alert.is_object()) fail(absl::StrCat(options.alert, " must hold one JSON object"), 2);

  pbc::DryRunOptions run;
  run.approval = options.approval;
  run.indicators = options.indicators;
  run.budget.max_steps = options.max_steps;
  if (!options.results_file.empty()) {
    run.results = parseJson(readFile(options.results_file), options.results_file);
    if (!run.results.is_object()) {
      fail(absl::StrCat(options.results_file, " must map action names to results"), 2);
    }
  }
  for (const std::string& entry : options.results) {
    size_t equals = entry.find('=');
    if (equals == std::string::npos || equals == 0) {
      fail(absl::StrCat("invalid --result '", entry, "'; use ACTION=JSON, as in ",
                        "ticket.create='\"INC-1\"' or edr.isolate_host='{\"error\":\"down\"}'"),
           2);
    }
    run.results[entry.substr(0, equals)] =
        parseJson(entry.substr(equals + 1), absl::StrCat("--result ", entry.substr(0, equals)));
  }
  pbc::DryRunReport report = pbc::dryRun(*program, alertHost(), alert, run, &std::cout);
  if (report.status != pb::RunStatus::kReturned) fail("the dry run did not complete", 1);
}

}  // namespace

void registerPlaybookCommands(CLI::App& app) {
  auto options = std::make_shared<PlaybookCommandOptions>();
  CLI::App* playbooks =
      app.add_subcommand("playbooks", "compile, disassemble and dry-run response playbooks");
  playbooks->require_subcommand(1);

  CLI::App* compile = playbooks->add_subcommand(
      "compile", "compile a YAML playbook, verify it and write the module");
  compile->add_option("playbook", options->input, "the playbook source (.yml)")->required();
  compile->add_option("-o,--output", options->output,
                      "module file to write (default: the playbook path with .vgpb)");
  compile->callback([options] { runCompile(*options); });

  CLI::App* disasm = playbooks->add_subcommand(
      "disasm", "print the bytecode of a module, or of a playbook after compiling it");
  disasm->add_option("input", options->input, "a module (.vgpb) or a playbook (.yml)")->required();
  disasm->callback([options] { runDisasm(*options); });

  CLI::App* run = playbooks->add_subcommand(
      "run", "run a playbook on an alert with connectors replaced by recorders");
  run->add_flag("--dry-run", options->dry_run,
                "required: print each step and connector call instead of performing it");
  run->add_option("--approval", options->approval,
                  "answer to every wait_for_approval: approved (default), rejected or timeout");
  run->add_option("--result", options->results,
                  "ACTION=JSON: result a recorded action returns; {\"error\": \"text\"} makes "
                  "it fail (repeatable)");
  run->add_option("--results", options->results_file,
                  "JSON file mapping action names to results, as --result");
  run->add_option("--indicator", options->indicators,
                  "a value intel() reports as a known indicator (repeatable)");
  run->add_option("--max-steps", options->max_steps,
                  "instruction budget of the run (default: 1000000)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1'000'000'000}));
  run->add_option("playbook", options->input, "a playbook (.yml) or module (.vgpb)")->required();
  run->add_option("alert", options->alert, "the alert as one JSON object")->required();
  run->callback([options] { runDryRun(*options); });
}

}  // namespace vigil::ctl
