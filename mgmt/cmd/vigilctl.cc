// vigilctl: command-line client for the vigild REST API.
//   vigilctl [--api URL] [--token T] [--ca-cert FILE] <command> ...
//   vigilctl tokens bootstrap --state-dir DIR | tokens create|list|revoke
//   vigilctl tenants create|list|delete    vigilctl audit list | audit verify --state-dir DIR
//   vigilctl [--api URL] cases list [--tenant T] [--status S] [--limit N] [--json]
//   vigilctl [--api URL] cases show ID [--json]
//   vigilctl [--api URL] runs list|show ID|approvals|approve ID|deny ID [--json]
//   vigilctl parse [--format F] [--framing F] [--tenant T] FILE
//   vigilctl intel load [--format list|regex|csv|misp|stix] FEED...
//   vigilctl [--api URL] intel indicators list|add|remove | intel sightings | intel reload
//   vigilctl [--api URL] status [--json]
//   vigilctl playbooks compile|disasm|run --dry-run ...
//   vigilctl rules test [--format F] [--tenant T] RULE.yml... EVENTS
//   vigilctl [--api URL] content push|versions|activations|show|diff|activate|delete KIND ... [--json]
//   vigilctl [--api URL] config reload [--json]
// Each command group lives in its own vigilctl_<group>.cc and registers itself here.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "mgmt/cmd/vigilctl_client.h"

namespace vigil::ctl {
// Registers "vigilctl intel load|check" (mgmt/cmd/vigilctl_intel.cc), which work offline.
void registerIntelCommands(CLI::App& app);
// Registers "vigilctl status" and "vigilctl intel indicators|sightings|reload"
// (mgmt/cmd/vigilctl_status.cc); call it after registerIntelCommands.
void registerStatusCommands(CLI::App& app, const GlobalOptions& global);
// Registers "vigilctl playbooks" (mgmt/cmd/vigilctl_playbooks.cc), which works offline.
void registerPlaybookCommands(CLI::App& app);
// Registers "vigilctl rules test" (mgmt/cmd/vigilctl_rules.cc), which works offline.
void registerRulesCommands(CLI::App& app);
// Registers "vigilctl content" and "vigilctl config" (mgmt/cmd/vigilctl_content.cc).
void registerContentCommands(CLI::App& app, const GlobalOptions& global);
}  // namespace vigil::ctl

namespace {
// Exit status of an unknown command or argument, the usage error code vigild uses too.
constexpr int kUsageExitCode = 2;
}  // namespace

int main(int argc, char** argv) {
  vigil::ctl::GlobalOptions options;
  if (const char* env = std::getenv("VIGIL_API"); env != nullptr && *env != '\0') {
    options.api_url = env;
    // Reported by the first API request, so offline commands still run.
    options.api_url_error = vigil::ctl::normalizeApiUrl(options.api_url);
    if (!options.api_url_error.empty()) options.api_url_error.insert(0, "VIGIL_API: ");
  }
  if (const char* env = std::getenv("VIGIL_TOKEN"); env != nullptr) options.token = env;
  if (const char* env = std::getenv("VIGIL_CA_CERT"); env != nullptr) options.ca_cert = env;
  vigil::ctl::useGlobalOptions(&options);

  CLI::App app{
      "vigilctl: inspect and manage a running vigild through its REST API, and parse log "
      "files offline"};
  app.require_subcommand(1);
  // Let global options such as --api follow the subcommand too.
  app.fallthrough();
  app.add_option("--api", options.api_url,
                 "base URL of the vigild API (default: $VIGIL_API or http://127.0.0.1:8080)")
      ->transform(CLI::Validator(
          [&options](std::string& url) {
            options.api_url_error.clear();  // --api replaces $VIGIL_API
            return vigil::ctl::normalizeApiUrl(url);
          },
          "URL"));
  app.add_option("--token", options.token,
                 "API token sent as 'Authorization: Bearer' (default: $VIGIL_TOKEN; prefer the "
                 "variable, since other users can read command lines)");
  app.add_option("--ca-cert", options.ca_cert,
                 "PEM file of the CA that signed the API's https certificate "
                 "(default: $VIGIL_CA_CERT, else the system CAs)");

  vigil::ctl::registerCasesCommands(app, options);
  vigil::ctl::registerAuthCommands(app, options);
  vigil::ctl::registerRunsCommands(app, options);
  vigil::ctl::registerParseCommands(app);
  vigil::ctl::registerIntelCommands(app);
  vigil::ctl::registerStatusCommands(app, options);
  vigil::ctl::registerPlaybookCommands(app);
  vigil::ctl::registerRulesCommands(app);
  vigil::ctl::registerContentCommands(app, options);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 checks required options and subcommands before it reports unknown words, so
    // "vigilctl bogus" would only report a missing subcommand. Name the word instead.
    const std::vector<std::string> unknown = app.remaining(true);
    if (e.get_exit_code() != 0 && !unknown.empty()) {
      std::fprintf(stderr,
                   "vigilctl: unknown command or argument '%s'; see vigilctl --help for the "
                   "commands and options\n",
                   unknown.front().c_str());
      return kUsageExitCode;
    }
    return app.exit(e);
  }
  return 0;
}
