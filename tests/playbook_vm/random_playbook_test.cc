// Random playbooks from the language's grammar: whatever the compiler accepts must pass
// the verifier, and both dispatch loops must agree on the dry run. Most generated
// expressions are type errors, which exercises the compiler's checks as well.
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "playbook_vm/compiler/alert_host.h"
#include "playbook_vm/compiler/compiler.h"
#include "playbook_vm/compiler/dry_run.h"

namespace vigil::playbook_vm::compiler {
namespace {

class PlaybookGenerator {
 public:
  explicit PlaybookGenerator(uint64_t seed) : rng_(seed) {}

  std::string generate(int index) {
    std::string text = absl::StrCat("name: g", index, "\ntrigger: {}\n",
                                    "vars: {a: 1, b: 2.5, s: \"x\", l: \"${[1, 2]}\", "
                                    "flag: true}\nsteps:\n");
    steps(text, 2, 0);
    return text;
  }

 private:
  int below(int n) { return static_cast<int>(rng_() % static_cast<uint64_t>(n)); }

  std::string expression(int depth) {
    static const char* kLeaves[] = {"1",
                                    "2.5",
                                    "-3",
                                    "'x'",
                                    "true",
                                    "false",
                                    "null",
                                    "alert.user",
                                    "alert.count",
                                    "alert.tags",
                                    "len(alert.events)",
                                    "a",
                                    "b",
                                    "s",
                                    "l",
                                    "flag",
                                    "[1, 2]",
                                    "alert.events[0].user",
                                    "str(a)",
                                    "intel(alert.url)",
                                    "contains(s, 'x')"};
    static const char* kOperators[] = {"+",  "-", "*",  "/",   "%",  "==", "!=",    "<",
                                       "<=", ">", ">=", "and", "or", "in", "not in"};
    if (depth > 1 || below(100) < 45) return kLeaves[below(std::size(kLeaves))];
    int shape = below(10);
    if (shape == 0) return absl::StrCat("not (", expression(depth + 1), ")");
    if (shape == 1) return absl::StrCat("-(", expression(depth + 1), ")");
    if (shape == 2)
      return absl::StrCat("[", expression(depth + 1), ", ", expression(depth + 1), "]");
    return absl::StrCat("(", expression(depth + 1), " ", kOperators[below(std::size(kOperators))],
                        " ", expression(depth + 1), ")");
  }

  // A single-quoted YAML scalar holding one ${expression}.
  std::string quoted(const std::string& expr) {
    std::string out = "'${";
    for (char c : expr) out += c == '\'' ? std::string("''") : std::string(1, c);
    return out + "}'";
  }

  std::string variable() {
    static const char* kNames[] = {"a", "b", "s", "l", "flag"};
    return kNames[below(5)];
  }

  void steps(std::string& out, int indent, int depth) {
    std::string pad(static_cast<size_t>(indent), ' ');
    for (int n = below(3) + 1; n > 0; --n) {
      switch (depth < 3 ? below(8) : below(2) * 4) {
        case 0:
          out += pad + "- set: {" + variable() + ": " + quoted(expression(0)) + "}\n";
          break;
        case 1:
          out += pad + "- if: " + quoted(expression(0)) + "\n" + pad + "  then:\n";
          steps(out, indent + 4, depth + 1);
          if (below(2) == 0) {
            out += pad + "  else:\n";
            steps(out, indent + 4, depth + 1);
          }
          break;
        case 2: {
          static const char* kLists[] = {"alert.events", "alert.tags", "l", "'${[1, 2, 3]}'"};
          out += pad + "- for_each: " + (below(2) ? "x" : "e") + "\n" + pad +
                 "  in: " + kLists[below(4)] + "\n" + pad +
                 "  limit: " + std::to_string(below(4) + 1) + "\n" + pad + "  do:\n";
          steps(out, indent + 4, depth + 1);
          break;
        }
        case 3:
          out += pad + "- wait_for_approval: \"ok ${s}?\"\n" + pad + "  timeout: 5m\n";
          if (below(2) == 0) {
            out += pad + "  default: approve\n";
          } else {
            out += pad + "  on_timeout:\n";
            steps(out, indent + 4, depth + 1);
          }
          out += pad + "  on_approve:\n";
          steps(out, indent + 4, depth + 1);
          break;
        case 4: {
          static const char* kActions[] = {"intel.query", "edr.isolate_host", "siem.search_logins",
                                           "ticket.create"};
          out += pad + "- action: " + kActions[below(4)] + "\n" + pad +
                 "  with: {v: " + quoted(expression(0)) + ", t: \"n=${a}\"}\n";
          if (below(2) == 0) out += pad + "  output: " + variable() + "\n";
          if (below(2) == 0) {
            out += pad + "  retry: {attempts: " + std::to_string(below(3) + 1) + ", backoff: 1s}\n";
          }
          if (below(2) == 0) {
            out += pad + "  on_error:\n";
            steps(out, indent + 4, depth + 1);
          }
          break;
        }
        case 5:
          out += pad + "- delay: 3s\n";
          break;
        case 6:
          out += pad + "- log: \"v=${" + variable() + "}\"\n";
          break;
        default:
          out += pad + "- stop: " + quoted(expression(0)) + "\n";
          break;
      }
    }
  }

  std::mt19937_64 rng_;
};

// Every generated playbook that compiles loads, and both dispatch loops agree.
TEST(RandomPlaybookTest, CompiledPlaybooksVerifyAndAgree) {
  HostRegistry host;
  ASSERT_TRUE(registerAlertHost(host).ok());
  nlohmann::json alert = nlohmann::json::parse(R"({
    "user": "j.doe", "count": 3, "tags": ["a", "b"], "url": "http://bad.example/",
    "events": [{"user": "a"}, {"user": "b"}]})");
  PlaybookGenerator generator(20261204);
  int compiled = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string source = generator.generate(i);
    auto out = compilePlaybook(source, "g.yml");
    if (!out.ok()) {
      ASSERT_EQ(std::string(out.status().message()).rfind("g.yml:", 0), 0u) << out.status();
      continue;
    }
    ++compiled;
    auto program = loadProgram(out->module, host);
    ASSERT_TRUE(program.ok()) << program.status() << "\n" << source;
    DryRunOptions options;
    options.indicators = {"http://bad.example/"};
    options.results["edr.isolate_host"] = {{"error", "down"}};
    options.budget = Budget{.max_steps = 20000, .max_memory_bytes = 64 * 1024};
    options.dispatch = Dispatch::kSwitch;
    DryRunReport a = dryRun(**program, host, alert, options, nullptr);
    options.dispatch = Dispatch::kComputedGoto;
    DryRunReport b = dryRun(**program, host, alert, options, nullptr);
    ASSERT_EQ(a.status, b.status) << source;
    ASSERT_EQ(a.result, b.result) << source;
    ASSERT_EQ(a.message, b.message) << source;
    ASSERT_EQ(a.transcript, b.transcript) << source;
  }
  // The generator must keep producing valid playbooks, or this test checks nothing.
  EXPECT_GT(compiled, 300);
}

}  // namespace
}  // namespace vigil::playbook_vm::compiler
