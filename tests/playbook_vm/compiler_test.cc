// The playbook compiler: every language construct compiled, verified and run, and every
// error message with its file:line:column.
#include "playbook_vm/compiler/compiler.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "playbook_vm/builder.h"
#include "playbook_vm/compiler/alert_host.h"
#include "playbook_vm/compiler/dry_run.h"
#include "playbook_vm/compiler/expression.h"

namespace vigil::playbook_vm::compiler {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr const char* kHeader =
    "name: test\n"
    "trigger: {rule_ids: [r1]}\n";

class CompilerTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(registerAlertHost(host_).ok()); }

  // Compiles kHeader + `body`; returns the error message, or "" when it compiled.
  std::string error(const std::string& body) {
    auto out = compileAndLoad(std::string(kHeader) + body, "t.yml", host_);
    return out.ok() ? "" : std::string(out.status().message());
  }

  // Compiles kHeader + `body` and dry-runs it on `alert`.
  DryRunReport run(const std::string& body, const nlohmann::json& alert = {},
                   DryRunOptions options = {}) {
    auto program = compileAndLoad(std::string(kHeader) + body, "t.yml", host_);
    EXPECT_TRUE(program.ok()) << program.status();
    if (!program.ok()) return {};
    program_ = std::move(*program);
    nlohmann::json a = alert.is_null() ? nlohmann::json::object() : alert;
    return dryRun(*program_, host_, a, options, nullptr);
  }

  // Runs `steps` that end in `stop: RESULT`; returns the rendered result.
  std::string eval(const std::string& expression, const nlohmann::json& alert = {}) {
    // A single-quoted YAML scalar holding one ${...} keeps the expression's type.
    std::string quoted;
    for (char c : expression) quoted += c == '\'' ? std::string("''") : std::string(1, c);
    DryRunReport r = run("steps:\n  - stop: '${" + quoted + "}'\n", alert);
    EXPECT_EQ(r.status, RunStatus::kReturned) << r.message;
    return r.status == RunStatus::kReturned ? r.result : r.message;
  }

  HostRegistry host_;
  std::unique_ptr<Program> program_;
};

// ---------------------------------------------------------------------------------------
// Expressions

// Arithmetic follows the usual precedence and the VM's int and double rules.
TEST_F(CompilerTest, ArithmeticPrecedence) {
  EXPECT_EQ(eval("1 + 2 * 3"), "7");
  EXPECT_EQ(eval("(1 + 2) * 3"), "9");
  EXPECT_EQ(eval("10 - 4 - 3"), "3");
  EXPECT_EQ(eval("7 % 4 + 8 / 2"), "7");
  EXPECT_EQ(eval("-3 * -2"), "6");
  EXPECT_EQ(eval("1.5 * 2"), "3");
  EXPECT_EQ(eval("-9223372036854775808"), "-9223372036854775808");
  EXPECT_EQ(eval("100000 * 3"), "300000");
}

// Comparisons, equality and boolean logic, including short-circuit evaluation.
TEST_F(CompilerTest, ComparisonsAndLogic) {
  EXPECT_EQ(eval("2 > 1 and 1 >= 1"), "true");
  EXPECT_EQ(eval("2 < 1 or 'a' <= 'b'"), "true");
  EXPECT_EQ(eval("not (1 == 1)"), "false");
  EXPECT_EQ(eval("1 != 2"), "true");
  EXPECT_EQ(eval("null == null"), "true");
  // The right side would fail (1 / 0) if it ran.
  EXPECT_EQ(eval("false and 1 / 0 == 1"), "false");
  EXPECT_EQ(eval("true or 1 / 0 == 1"), "true");
}

// String building with + converts non-strings; templates interpolate ${...}.
TEST_F(CompilerTest, StringBuilding) {
  EXPECT_EQ(eval("'port ' + 22"), "\"port 22\"");
  EXPECT_EQ(eval("1.5 + ' s'"), "\"1.5 s\"");
  DryRunReport r = run("steps:\n  - stop: 'n=${1 + 1}, ok=${true}, none=${null}'\n");
  EXPECT_EQ(r.result, "\"n=2, ok=true, none=null\"");
  r = run("steps:\n  - stop: \"literal $${x}\"\n");
  EXPECT_EQ(r.result, "\"literal ${x}\"");
  r = run("steps:\n  - stop: \"${'kept ' + 1}\"\n");
  EXPECT_EQ(r.result, "\"kept 1\"");
  EXPECT_EQ(eval("str(42) + str('x')"), "\"42x\"");
  EXPECT_EQ(eval("len('abc') + len([1, 2])"), "5");
}

// Membership in list literals and variables, and indexing.
TEST_F(CompilerTest, Membership) {
  EXPECT_EQ(eval("'b' in ['a', 'b']"), "true");
  EXPECT_EQ(eval("3 not in [1, 2]"), "true");
  EXPECT_EQ(eval("[10, 20, 30][1]"), "20");
  EXPECT_EQ(eval("alert.severity in ['high', 'critical']", {{"severity", "high"}}), "true");
  EXPECT_EQ(eval("'vpn' in alert.tags", {{"tags", {"vpn", "auth"}}}), "true");
}

// Alert fields, nested paths, missing fields and events.
TEST_F(CompilerTest, AlertAndEventFields) {
  nlohmann::json alert = {{"user", "bob"},
                          {"src", {{"ip", "10.0.0.1"}}},
                          {"count", 3},
                          {"events", {{{"user", "a"}}, {{"user", "b"}}}}};
  EXPECT_EQ(eval("alert.user", alert), "\"bob\"");
  EXPECT_EQ(eval("alert.src.ip", alert), "\"10.0.0.1\"");
  EXPECT_EQ(eval("alert.count * 2", alert), "6");
  EXPECT_EQ(eval("alert.missing", alert), "null");
  EXPECT_EQ(eval("len(alert.events)", alert), "2");
  EXPECT_EQ(eval("alert.events[1].user", alert), "\"b\"");
}

// intel() and contains() call the host.
TEST_F(CompilerTest, IndicatorLookupAndContains) {
  DryRunOptions options;
  options.indicators = {"evil.example"};
  DryRunReport r = run("steps:\n  - stop: '${intel(alert.domain)} ${intel(\"good.example\")}'\n",
                       {{"domain", "evil.example"}}, options);
  ASSERT_EQ(r.status, RunStatus::kReturned) << r.message;
  EXPECT_EQ(r.result, "\"true false\"");
  EXPECT_EQ(eval("contains('powershell -enc', '-enc')"), "true");
}

// ---------------------------------------------------------------------------------------
// Steps

// vars:, set: and if/else, with variables scoped to their block.
TEST_F(CompilerTest, VariablesAndBranches) {
  DryRunReport r =
      run("vars:\n"
          "  level: alert.level\n"
          "  label: \"none\"\n"
          "steps:\n"
          "  - if: level > 5\n"
          "    then:\n"
          "      - set: {label: \"high\"}\n"
          "    else:\n"
          "      - set:\n"
          "          label: \"low\"\n"
          "          inner: 1\n"
          "  - stop: label\n",
          {{"level", 7}});
  ASSERT_EQ(r.status, RunStatus::kReturned) << r.message;
  EXPECT_EQ(r.result, "\"high\"");
}

// for_each visits every element up to its limit.
TEST_F(CompilerTest, ForEachWithLimit) {
  DryRunReport r =
      run("vars: {total: 0, seen: 0}\n"
          "steps:\n"
          "  - for_each: x\n"
          "    in: '[1, 2, 3, 4, 5]'\n"
          "    limit: 3\n"
          "    do:\n"
          "      - set: {total: total + x, seen: seen + 1}\n"
          "  - stop: '${total}/${seen}'\n");
  ASSERT_EQ(r.status, RunStatus::kReturned) << r.message;
  EXPECT_EQ(r.result, "\"6/3\"");
}

// for_each over alert.events gives event handles with fields.
TEST_F(CompilerTest, ForEachOverEvents) {
  DryRunReport r =
      run("vars: {users: \"\"}\n"
          "steps:\n"
          "  - for_each: e\n"
          "    in: alert.events\n"
          "    limit: 10\n"
          "    do:\n"
          "      - set: {users: users + e.user}\n"
          "  - stop: users\n",
          {{"events", {{{"user", "a"}}, {{"user", "b"}}}}});
  ASSERT_EQ(r.status, RunStatus::kReturned) << r.message;
  EXPECT_EQ(r.result, "\"ab\"");
}

// Actions pass their parameters, keep their output and log.
TEST_F(CompilerTest, ActionOutputAndLog) {
  DryRunOptions options;
  options.results["ticket.create"] = "T-7";
  DryRunReport r =
      run("steps:\n"
          "  - action: ticket.create\n"
          "    with: {title: \"x ${alert.id}\", prio: 2, tags: [\"a\", alert.id]}\n"
          "    output: ticket\n"
          "  - log: \"created ${ticket}\"\n",
          {{"id", 9}}, options);
  ASSERT_EQ(r.status, RunStatus::kReturned) << r.message;
  EXPECT_THAT(r.actions, ElementsAre("ticket.create(title=\"x 9\", prio=2, tags=[\"a\", 9])"));
  EXPECT_THAT(r.transcript, ::testing::Contains("  log created T-7"));
}

// A failing action is retried with growing back-off, then handled by on_error.
TEST_F(CompilerTest, RetryThenOnError) {
  DryRunOptions options;
  options.results["edr.isolate"] = {{"error", "EDR timeout"}};
  DryRunReport r =
      run("steps:\n"
          "  - action: edr.isolate\n"
          "    retry: {attempts: 3, backoff: 1m, factor: 3}\n"
          "    on_error:\n"
          "      - stop: \"handled: ${error}\"\n",
          {}, options);
  ASSERT_EQ(r.status, RunStatus::kReturned) << r.message;
  EXPECT_EQ(r.result, "\"handled: EDR timeout\"");
  EXPECT_EQ(r.actions.size(), 3u);
  EXPECT_THAT(r.transcript, ::testing::Contains(HasSubstr("delay 60s (retry edr.isolate)")));
  EXPECT_THAT(r.transcript, ::testing::Contains(HasSubstr("delay 180s (retry edr.isolate)")));
}

// Without on_error a failed action fails the run with the connector's message.
TEST_F(CompilerTest, UnhandledActionErrorFailsRun) {
  DryRunOptions options;
  options.results["chat.notify"] = {{"error", "channel not found"}};
  DryRunReport r = run("steps:\n  - action: chat.notify\n", {}, options);
  ASSERT_EQ(r.status, RunStatus::kFailed);
  EXPECT_THAT(r.message, HasSubstr("(line 4:13) CALL: host-error: host function fail failed: "
                                   "ABORTED: action chat.notify failed after 1 attempt: "
                                   "channel not found"));
}

// wait_for_approval takes the branch of the answer; a timeout follows on_timeout or default.
TEST_F(CompilerTest, ApprovalBranches) {
  const std::string body =
      "steps:\n"
      "  - wait_for_approval: \"go?\"\n"
      "    timeout: 2h\n"
      "    output: answer\n"
      "    on_approve: [{stop: \"yes ${answer}\"}]\n"
      "    on_reject: [{stop: \"no ${answer}\"}]\n"
      "    on_timeout: [{stop: \"late ${answer}\"}]\n";
  for (const auto& [answer, expected] :
       std::vector<std::pair<std::string, std::string>>{{"approved", "\"yes approved\""},
                                                        {"rejected", "\"no rejected\""},
                                                        {"timeout", "\"late timeout\""}}) {
    DryRunOptions options;
    options.approval = answer;
    DryRunReport r = run(body, {}, options);
    ASSERT_EQ(r.status, RunStatus::kReturned) << r.message;
    EXPECT_EQ(r.result, expected);
    EXPECT_THAT(r.transcript,
                ::testing::Contains(HasSubstr("wait_for_approval \"go?\" timeout 7200s")));
  }
  DryRunOptions options;
  options.approval = "timeout";
  DryRunReport r =
      run("steps:\n"
          "  - wait_for_approval: \"go?\"\n"
          "    timeout: 30\n"
          "    default: reject\n"
          "    on_approve: [{stop: \"yes\"}]\n"
          "    on_reject: [{stop: \"no\"}]\n",
          {}, options);
  ASSERT_EQ(r.status, RunStatus::kReturned) << r.message;
  EXPECT_EQ(r.result, "\"no\"");
}

// delay suspends with its duration in seconds.
TEST_F(CompilerTest, DelaySuspends) {
  DryRunReport r = run("steps:\n  - delay: 5m\n  - stop: 1\n");
  ASSERT_EQ(r.status, RunStatus::kReturned) << r.message;
  EXPECT_THAT(r.transcript, ::testing::Contains("  delay 300s (delay) -> skipped"));
}

// A YIELD request that is neither an approval nor a delay fails the dry run, as it fails
// the run in vigild, instead of resuming with null.
TEST_F(CompilerTest, UnknownSuspendRequestFails) {
  ProgramBuilder b("odd");
  b.emitABC(Opcode::kNewList, 0, 0, 0);
  b.emitABx(Opcode::kLoadK, 1, b.addString("d\x9alay"));
  b.emitABC(Opcode::kAppend, 0, 1, 0);
  b.emitAsBx(Opcode::kLoadInt, 1, 120);
  b.emitABC(Opcode::kAppend, 0, 1, 0);
  b.emitABC(Opcode::kAppend, 0, 1, 0);
  b.emitABC(Opcode::kYield, 2, 0, 0);
  b.emitABC(Opcode::kReturn, 2, 0, 0);
  auto bytes = b.finish();
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  auto program = loadProgram(*bytes, host_);
  ASSERT_TRUE(program.ok()) << program.status();
  DryRunReport r = dryRun(**program, host_, nlohmann::json::object(), {}, nullptr);
  EXPECT_EQ(r.status, RunStatus::kFailed);
  EXPECT_THAT(r.message, HasSubstr("playbook 'odd' suspended with unknown request"));
  EXPECT_THAT(r.transcript, ::testing::Contains(HasSubstr("  failed: playbook 'odd' suspended")));
}

// The module keeps the trigger and the source hash; triggers match alerts.
TEST_F(CompilerTest, TriggerIsCompiled) {
  auto program = compileAndLoad(
      "name: trig\n"
      "trigger:\n"
      "  rule_ids: [a, b]\n"
      "  tags: [x]\n"
      "  severity: high\n"
      "  tenants: [acme]\n"
      "steps: [{stop: 1}]\n",
      "trig.yml", host_);
  ASSERT_TRUE(program.ok()) << program.status();
  const Trigger& t = (*program)->trigger();
  EXPECT_THAT(t.rule_ids, ElementsAre("a", "b"));
  EXPECT_EQ(t.min_severity, Severity::kHigh);
  nlohmann::json alert = {
      {"rule_id", "b"}, {"tags", {"x"}}, {"severity", "critical"}, {"tenant", "acme"}};
  EXPECT_TRUE(triggerMatches(t, alert));
  alert["severity"] = "medium";
  EXPECT_FALSE(triggerMatches(t, alert));
  alert["severity"] = 3;
  EXPECT_TRUE(triggerMatches(t, alert));
  alert["tenant"] = "other";
  EXPECT_FALSE(triggerMatches(t, alert));
  alert["tenant"] = "acme";
  alert["tags"] = {"y"};
  EXPECT_FALSE(triggerMatches(t, alert));
  alert["tags"] = {"x"};
  alert["rule_id"] = "c";
  EXPECT_FALSE(triggerMatches(t, alert));
  EXPECT_NE((*program)->sourceSha256(), (std::array<uint8_t, 32>{}));
}

// Variable types follow each path, so a retyped variable is checked as its new type and
// a branch that ends in stop: does not widen the types after it.
TEST_F(CompilerTest, VariableTypesFollowPaths) {
  EXPECT_THAT(error("vars: {l: \"${[1]}\"}\n"
                    "steps:\n"
                    "  - set: {l: 'str(1)'}\n"
                    "  - stop: l < 1\n"),
              HasSubstr("t.yml:6:13: type error: '<' compares string with int"));
  EXPECT_EQ(error("vars: {l: \"${[1]}\"}\n"
                  "steps:\n"
                  "  - if: alert.flag == true\n"
                  "    then:\n"
                  "      - set: {l: \"text\"}\n"
                  "      - stop: l\n"
                  "  - stop: len(l) + 1\n"),
            "");
  // Joined after an if without stop, l may be a list or a string, and both suit len().
  DryRunReport r =
      run("vars: {l: \"${[1]}\"}\n"
          "steps:\n"
          "  - if: alert.flag == true\n"
          "    then: [{set: {l: \"text\"}}]\n"
          "  - stop: len(l)\n",
          {{"flag", true}});
  ASSERT_EQ(r.status, RunStatus::kReturned) << r.message;
  EXPECT_EQ(r.result, "4");
}

// An action's parameters read the output variable's old value; a failed action leaves
// it null; a new output variable is not readable in its own step.
TEST_F(CompilerTest, OutputVariableTiming) {
  DryRunOptions options;
  options.results["a.b"] = "new";
  DryRunReport r =
      run("vars: {v: 1}\n"
          "steps:\n"
          "  - action: a.b\n"
          "    with: {old: v}\n"
          "    output: v\n"
          "  - stop: v\n",
          {}, options);
  ASSERT_EQ(r.status, RunStatus::kReturned) << r.message;
  EXPECT_EQ(r.result, "\"new\"");
  EXPECT_THAT(r.actions, ElementsAre("a.b(old=1)"));

  options.results["a.b"] = {{"error", "down"}};
  r =
      run("vars: {v: 1}\n"
          "steps:\n"
          "  - action: a.b\n"
          "    output: v\n"
          "    on_error: [{log: \"failed\"}]\n"
          "  - stop: v\n",
          {}, options);
  ASSERT_EQ(r.status, RunStatus::kReturned) << r.message;
  EXPECT_EQ(r.result, "null");

  EXPECT_THAT(error("steps:\n"
                    "  - action: a.b\n"
                    "    with: {x: fresh}\n"
                    "    output: fresh\n"),
              HasSubstr("t.yml:5:15: undefined variable 'fresh'"));
}

// Runtime errors carry the expression's line and column.
TEST_F(CompilerTest, RuntimeErrorsNamePosition) {
  DryRunReport r = run("steps:\n  - set: {x: alert.n + 1}\n", {{"n", "text"}});
  ASSERT_EQ(r.status, RunStatus::kFailed);
  EXPECT_THAT(r.message, HasSubstr("(line 4:22) ADD: type-error"));
}

// ---------------------------------------------------------------------------------------
// Errors: one case per message, each with file:line:column.

struct ErrorCase {
  const char* name;
  std::string body;  // after kHeader (lines 1-2)
  std::string expected;
};

void PrintTo(const ErrorCase& c, std::ostream* os) { *os << c.name; }

class CompilerErrorTest : public CompilerTest, public ::testing::WithParamInterface<ErrorCase> {};

TEST_P(CompilerErrorTest, ReportsPosition) {
  EXPECT_THAT(error(GetParam().body), HasSubstr(GetParam().expected));
}

const ErrorCase kErrorCases[] = {
    {"BadYaml", "steps: [a, b\n", "t.yml:4:1: invalid YAML: end of sequence flow not found"},
    {"NotAMapping", "", "t.yml:1:1: the playbook has no steps"},
    {"UnknownTopField", "stepz: []\n",
     "t.yml:3:1: unknown field 'stepz' in playbook; expected one of: name, description, trigger, "
     "vars, steps"},
    {"UnknownStepField", "steps:\n  - if: true\n    then: []\n    otherwise: []\n",
     "t.yml:6:5: unknown field 'otherwise' in if step; expected one of: if, then, else, name"},
    {"UnknownStep", "steps:\n  - shout: x\n",
     "t.yml:4:5: unknown step; a step has one of: action, if"},
    {"TwoKinds", "steps:\n  - log: \"a\"\n    delay: 1s\n",
     "t.yml:4:11: a step has one kind, but this one has both 'delay' and 'log'"},
    {"UndefinedVariable", "steps:\n  - stop: 1 + nope\n", "t.yml:4:15: undefined variable 'nope'"},
    {"ScopeEndsWithBlock", "steps:\n  - if: true\n    then:\n      - set: {x: 1}\n  - stop: x\n",
     "t.yml:7:11: undefined variable 'x'"},
    {"TypeErrorArithmetic", "steps:\n  - stop: true - 1\n",
     "t.yml:4:11: type error: '-' needs int|double, but it is bool"},
    {"TypeErrorCondition", "steps:\n  - if: 1 + 2\n    then: []\n",
     "t.yml:4:9: type error: if: needs bool, but it is int"},
    {"TypeErrorCompare", "steps:\n  - stop: 1 < 'a'\n",
     "t.yml:4:13: type error: '<' compares int with string"},
    {"TypeErrorIn", "steps:\n  - stop: 1 in 2\n",
     "t.yml:4:16: type error: the right side of 'in' needs list, but it is int"},
    {"TypeErrorNot", "steps:\n  - stop: not 'x'\n", "t.yml:4:15: type error: 'not' needs bool"},
    {"TypeErrorTextList", "steps:\n  - log: \"a ${[1]}\"\n",
     "t.yml:4:15: type error: inserting into text needs"},
    {"TypeErrorForEach", "steps:\n  - for_each: x\n    in: 5\n    limit: 2\n    do: []\n",
     "t.yml:5:9: type error: for_each in: needs list, but it is int"},
    {"UnboundedLoop", "steps:\n  - for_each: x\n    in: '[1]'\n    do: []\n",
     "t.yml:4:15: unbounded loop: for_each 'x' has no limit:"},
    {"WhileLoop", "steps:\n  - while: true\n",
     "t.yml:4:5: unbounded loop: the only loop is for_each with a limit:"},
    {"LoopLimitRange", "steps:\n  - for_each: x\n    in: '[1]'\n    limit: 0\n    do: []\n",
     "t.yml:6:12: invalid for_each limit '0'; use an integer from 1 to 10000"},
    {"SyntaxError", "steps:\n  - stop: (1 + 2\n",
     "t.yml:4:17: syntax error: expected ')' to close the parenthesis, found 'end of expression'"},
    {"SyntaxAssign", "steps:\n  - if: a = 1\n    then: []\n",
     "t.yml:4:11: syntax error: unexpected '='; compare with '=='"},
    {"SyntaxChain", "steps:\n  - stop: 1 < 2 < 3\n",
     "t.yml:4:17: syntax error: comparisons do not chain"},
    {"SyntaxQuotedColumn", "steps:\n  - stop: \"${1 +}\"\n",
     "t.yml:4:17: syntax error: expression ends early"},
    {"UnclosedString", "steps:\n  - if: \"'abc\"\n    then: []\n",
     "t.yml:4:10: syntax error: string is not closed"},
    {"UnclosedTemplate", "steps:\n  - log: \"a ${b\"\n", "t.yml:4:13: '${' is not closed"},
    {"UnknownFunction", "steps:\n  - stop: lower('A')\n",
     "t.yml:4:11: unknown function 'lower'; available: len, str, intel, contains"},
    {"FunctionArity", "steps:\n  - stop: len()\n", "t.yml:4:11: len() takes 1 argument, got 0"},
    {"BareAlert", "steps:\n  - stop: alert\n", "t.yml:4:11: 'alert' is not a value"},
    {"FieldOnNonEvent", "vars: {x: 1}\nsteps:\n  - stop: x.y\n",
     "t.yml:5:11: field access '.y' needs alert or an event"},
    {"BadDuration", "steps:\n  - delay: 5 minutes\n",
     "t.yml:4:12: invalid duration '5 minutes' for delay"},
    {"ApprovalNoTimeout", "steps:\n  - wait_for_approval: \"ok?\"\n    default: approve\n",
     "t.yml:4:25: wait_for_approval has no timeout:"},
    {"ApprovalNoDefault", "steps:\n  - wait_for_approval: \"ok?\"\n    timeout: 1m\n",
     "t.yml:4:25: wait_for_approval needs on_timeout: steps or default: approve|reject"},
    {"ApprovalBadDefault",
     "steps:\n  - wait_for_approval: \"ok?\"\n    timeout: 1m\n    default: maybe\n",
     "t.yml:6:14: invalid default 'maybe'; use approve or reject"},
    {"BadActionName", "steps:\n  - action: Edr/Isolate\n",
     "t.yml:4:13: invalid action name 'Edr/Isolate'"},
    {"RetryAttempts", "steps:\n  - action: a.b\n    retry: {attempts: 50}\n",
     "t.yml:5:23: invalid retry attempts '50'; use an integer from 1 to 10"},
    {"BadVariableName", "steps:\n  - set: {alert: 1}\n",
     "t.yml:4:11: invalid variable name 'alert' for set:"},
    {"DuplicateVar", "vars: {a: 1}\nvars2: {}\nsteps: [{stop: 1}]\n",
     "t.yml:4:1: unknown field 'vars2'"},
    {"MappingValue", "steps:\n  - set: {x: {y: 1}}\n",
     "t.yml:4:14: a value must be an expression, a quoted text or a list"},
    {"EmptyCondition", "steps:\n  - if: ''\n    then: []\n",
     "t.yml:4:10: if: must be an expression"},
    {"NoThen", "steps:\n  - if: true\n", "t.yml:4:5: if step has no then: list"},
    {"InYamlList", "steps:\n  - for_each: x\n    in: [1, 2]\n    limit: 2\n    do: []\n",
     "t.yml:5:9: in: must be an expression, not a YAML list; quote a list expression, for "
     "example in: \"[1, 2]\""},
    {"IfMapping", "steps:\n  - if: {a: 1}\n    then: []\n",
     "t.yml:4:9: if: must be an expression, not a YAML mapping"},
    {"ForEachNoIn", "steps:\n  - for_each: x\n    limit: 1\n    do: []\n",
     "t.yml:4:5: for_each step has no in: list expression"},
    {"ForEachHides",
     "vars: {x: 1}\nsteps:\n  - for_each: x\n    in: '[1]'\n    limit: 1\n    do: []\n",
     "t.yml:5:15: for_each variable 'x' hides a variable of the same name"},
    {"RetryNotMap", "steps:\n  - action: a.b\n    retry: 3\n",
     "t.yml:5:12: retry: must be a mapping of attempts, backoff, factor"},
    {"RetryFactor", "steps:\n  - action: a.b\n    retry: {attempts: 2, factor: 11}\n",
     "t.yml:5:34: invalid retry factor '11'; use an integer from 1 to 10"},
    {"ApprovalBoth",
     "steps:\n  - wait_for_approval: \"ok?\"\n    timeout: 1m\n    default: approve\n    "
     "on_timeout: []\n",
     "t.yml:6:14: give either default: or on_timeout:, not both"},
    {"ApprovalPromptList",
     "steps:\n  - wait_for_approval: [a]\n    timeout: 1m\n    default: approve\n",
     "t.yml:4:24: wait_for_approval: must be the prompt text"},
    {"NotWithoutIn", "steps:\n  - stop: 1 not 2\n",
     "t.yml:4:17: syntax error: expected 'in' after 'not' in a comparison"},
    {"TrailingToken", "steps:\n  - stop: 1 2\n",
     "t.yml:4:13: syntax error: unexpected '2' after the end of the expression"},
    {"BadNumber", "steps:\n  - stop: 1x\n", "t.yml:4:11: syntax error: invalid number '1x'"},
    {"CallOnField", "steps:\n  - stop: a.b(1)\n",
     "t.yml:4:14: syntax error: only a function name can be called"},
    {"IndexNotList", "vars: {x: 1}\nsteps:\n  - stop: x[0]\n",
     "t.yml:5:11: type error: indexing with [ ] needs list, but it is int"},
    {"IndexNotInt", "steps:\n  - stop: '${[1][true]}'\n",
     "t.yml:4:18: type error: an index needs int, but it is bool"},
    {"LenType", "steps:\n  - stop: len(1)\n",
     "t.yml:4:15: type error: len() needs string|list, but it is int"},
    {"StrOfList", "steps:\n  - stop: str(alert.events)\n",
     "t.yml:4:15: type error: str() needs null|bool|int|double|string, but it is list"},
    {"NegateText", "steps:\n  - stop: -'a'\n",
     "t.yml:4:12: type error: unary '-' needs int|double, but it is string"},
    {"TextPlusList", "vars: {s: \"x\"}\nsteps:\n  - stop: s + alert.events\n",
     "t.yml:5:15: type error: text building with '+' needs null|bool|int|double|string, but it is "
     "list"},
    {"ContainsArity", "steps:\n  - stop: contains(1)\n",
     "t.yml:4:11: contains() takes 2 arguments, got 1"},
    {"SetNotMap", "steps:\n  - set: 5\n", "t.yml:4:10: set: must map variable names to values"},
    {"VarsNotMap", "vars: [1]\nsteps: [{stop: 1}]\n",
     "t.yml:3:7: vars: must map variable names to values"},
    {"WithNotMap", "steps:\n  - action: a.b\n    with: [1]\n",
     "t.yml:5:11: with: must map parameter names to values"},
    {"StepNotMap", "steps:\n  - just text\n",
     "t.yml:4:5: a step is a mapping with one of: action, if"},
    {"LogList", "steps:\n  - log: [a]\n", "t.yml:4:10: log: must be a text, not a list or mapping"},
    {"VariableDefinedTwice", "vars: {a: 1, a: 2}\nsteps: [{stop: a}]\n",
     "t.yml:3:14: variable 'a' is defined twice"},
    {"ParamName", "steps:\n  - action: a.b\n    with: {\"bad name\": 1}\n",
     "t.yml:5:13: invalid parameter name 'bad name'"},
};

INSTANTIATE_TEST_SUITE_P(Errors, CompilerErrorTest, ::testing::ValuesIn(kErrorCases),
                         [](const ::testing::TestParamInfo<ErrorCase>& test) {
                           return std::string(test.param.name);
                         });

// Header errors: name, trigger and severity.
TEST_F(CompilerTest, HeaderErrors) {
  auto message = [&](const std::string& source) {
    auto out = compilePlaybook(source, "h.yml");
    return out.ok() ? std::string() : std::string(out.status().message());
  };
  EXPECT_THAT(message("name: x\nsteps: [{stop: 1}]\n"),
              HasSubstr("h.yml:1:1: the playbook has no trigger"));
  EXPECT_THAT(message("name: 'a b'\ntrigger: {}\nsteps: [{stop: 1}]\n"),
              HasSubstr("h.yml:1:8: invalid playbook name 'a b'"));
  EXPECT_THAT(message("name: x\ntrigger: {severity: urgent}\nsteps: [{stop: 1}]\n"),
              HasSubstr("h.yml:2:21: invalid severity 'urgent'"));
  EXPECT_THAT(message("name: x\ntrigger: {rule: [a]}\nsteps: [{stop: 1}]\n"),
              HasSubstr("h.yml:2:11: unknown field 'rule' in trigger"));
  EXPECT_THAT(message("- a\n- b\n"), HasSubstr("h.yml:1:1: a playbook is a YAML mapping"));
  EXPECT_THAT(message("name: x\ntrigger: {}\nsteps: []\n"),
              HasSubstr("h.yml:3:8: steps: must be a non-empty list"));
  EXPECT_THAT(message(std::string(kMaxSourceBytes + 1, ' ')), HasSubstr("the limit is"));
  EXPECT_THAT(message("name: x\ntrigger: {tags: [[a]]}\nsteps: [{stop: 1}]\n"),
              HasSubstr("h.yml:2:18: each entry of trigger tags must be a string of 1 to 256 "
                        "bytes"));

  // More variables than registers.
  std::string vars = "name: x\ntrigger: {}\nvars:\n";
  for (int i = 0; i < 300; ++i) vars += "  v" + std::to_string(i) + ": 1\n";
  EXPECT_THAT(message(vars + "steps: [{stop: 1}]\n"),
              HasSubstr("h.yml:260:9: too many variables: 256 are in scope here, and each holds "
                        "one of the playbook's 256 registers; reuse variables with set:"));

  // Blocks nested deeper than kMaxNesting.
  std::string nested = "name: x\ntrigger: {}\nsteps:\n";
  std::string pad = "  ";
  for (int i = 0; i < 40; ++i) {
    nested += pad + "- if: true\n" + pad + "  then:\n";
    pad += "    ";
  }
  nested += pad + "- stop: 1\n";
  EXPECT_THAT(message(nested), HasSubstr("steps nest deeper than 32 levels"));
}

// A key given twice in any mapping the compiler reads is an error at the second key,
// because yaml-cpp keeps both entries and a lookup finds only the first.
TEST_F(CompilerTest, DuplicateKeysRejected) {
  auto message = [&](const std::string& source) {
    auto out = compilePlaybook(source, "d.yml");
    return out.ok() ? std::string() : std::string(out.status().message());
  };
  EXPECT_THAT(message("name: a\nname: b\ntrigger: {}\nsteps: [{stop: 1}]\n"),
              HasSubstr("d.yml:2:1: 'name' is given twice in playbook (first at line 1); YAML "
                        "keeps only one of the two, so remove or rename one"));
  EXPECT_THAT(message("name: a\ntrigger: {}\nsteps:\n  - log: a\nsteps:\n  - stop: 1\n"),
              HasSubstr("d.yml:5:1: 'steps' is given twice in playbook (first at line 3)"));
  EXPECT_THAT(message("name: a\ntrigger: {tags: [x], tags: [y]}\nsteps: [{stop: 1}]\n"),
              HasSubstr("d.yml:2:22: 'tags' is given twice in trigger (first at line 2)"));
  EXPECT_THAT(error("steps:\n  - action: a.b\n    with: {ip: 1, ip: 2}\n"),
              HasSubstr("t.yml:5:19: 'ip' is given twice in with: (first at line 5)"));
  EXPECT_THAT(error("steps:\n  - action: a.b\n    with:\n      ip: 1\n      'ip': 2\n"),
              HasSubstr("t.yml:7:8: 'ip' is given twice in with: (first at line 6)"));
  EXPECT_THAT(error("steps:\n  - log: a\n    log: b\n"),
              HasSubstr("t.yml:5:5: 'log' is given twice in log step (first at line 4)"));
  EXPECT_THAT(error("steps:\n  - set: {x: 1, x: 2}\n"),
              HasSubstr("t.yml:4:17: 'x' is given twice in set: (first at line 4)"));
  EXPECT_THAT(error("steps:\n  - action: a.b\n    retry: {attempts: 2, attempts: 3}\n"),
              HasSubstr("t.yml:5:26: 'attempts' is given twice in retry (first at line 5)"));
  // Two vars entries keep their own message.
  EXPECT_THAT(error("vars: {a: 1, a: 2}\nsteps: [{stop: a}]\n"),
              HasSubstr("t.yml:3:14: variable 'a' is defined twice"));
}

// A file contains one playbook: a second YAML document is an error at its first line, while
// document markers around the one playbook and empty documents after it are accepted.
TEST_F(CompilerTest, SecondDocumentRejected) {
  auto message = [&](const std::string& source) {
    auto out = compilePlaybook(source, "m.yml");
    return out.ok() ? std::string() : std::string(out.status().message());
  };
  const std::string playbook = "name: a\ntrigger: {}\nsteps: [{stop: 1}]\n";
  const std::string expected =
      "a second YAML document starts here, but a playbook file contains one playbook; move each "
      "playbook to its own file";
  EXPECT_THAT(message(playbook + "---\nname: b\ntrigger: {}\nsteps: [{stop: 2}]\n"),
              HasSubstr("m.yml:4:1: " + expected));
  EXPECT_THAT(message(playbook + "--- {name: b}\n"), HasSubstr("m.yml:4:1: " + expected));
  EXPECT_THAT(message(playbook + "---\n# b\n\nname: b\n"), HasSubstr("m.yml:4:1: " + expected));
  EXPECT_THAT(message(playbook + "...\nname: b\n"), HasSubstr("m.yml:5:1: " + expected));
  EXPECT_THAT(message(playbook + "...\n%YAML 1.2\n---\nname: b\n"),
              HasSubstr("m.yml:6:1: " + expected));
  EXPECT_THAT(message("---\n---\n" + playbook), HasSubstr("m.yml:2:1: " + expected));

  EXPECT_EQ(message("%YAML 1.2\n---\n" + playbook + "...\n"), "");
  EXPECT_EQ(message("--- # one\n" + playbook + "---\n# nothing here\n\n"), "");
  EXPECT_EQ(message(playbook + "...\n# end\n"), "");
  EXPECT_EQ(message("name: a\ntrigger: {}\nsteps:\n  - log: |\n      ---\n      x\n"), "");
  EXPECT_EQ(message("name: a\r\ntrigger: {}\r\nsteps: [{stop: 1}]\r\n---\r\n"), "");
}

// An empty file and a trigger list written as one value are reported at their line, not
// at line 0.
TEST_F(CompilerTest, EmptyFileAndScalarTrigger) {
  auto message = [&](const std::string& source) {
    auto out = compilePlaybook(source, "e.yml");
    return out.ok() ? std::string() : std::string(out.status().message());
  };
  for (const char* empty : {"", "\n\n", "   \n", "# only a comment\n", "---\n"}) {
    EXPECT_THAT(message(empty),
                HasSubstr("e.yml:1:1: the file has no playbook, only blank lines or comments"))
        << "source: '" << empty << "'";
  }
  EXPECT_THAT(message("name: a\ntrigger:\n  rule_ids: [x]\n  tags: phishing\nsteps: [{stop: 1}]\n"),
              HasSubstr("e.yml:4:9: trigger tags must be a list, for example [phishing], not a "
                        "single value"));
  EXPECT_THAT(message("name: a\ntrigger: {rule_ids: x-rule}\nsteps: [{stop: 1}]\n"),
              HasSubstr("e.yml:2:21: trigger rule_ids must be a list, for example [x-rule]"));
  EXPECT_THAT(message("name: a\ntrigger: {tenants: 'acme'}\nsteps: [{stop: 1}]\n"),
              HasSubstr("e.yml:2:21: trigger tenants must be a list, for example [acme]"));
}

// Code over kMaxCodeSize instructions is an error at the step, list item or text part
// that crosses the limit, not a verifier error without a position.
TEST_F(CompilerTest, CodeSizeLimitNamesPosition) {
  auto message = [&](const std::string& source) {
    auto out = compilePlaybook(source, "c.yml");
    return out.ok() ? std::string() : std::string(out.status().message());
  };
  const std::string expected =
      ": the playbook compiles to more than 16384 instructions here, the playbook code-size "
      "limit; split it into several playbooks, or repeat steps with for_each instead of "
      "writing them out";
  std::string steps = "name: x\ntrigger: {}\nsteps:\n";
  for (int i = 0; i < 20000; ++i) steps += "  - log: a\n";
  std::string error = message(steps);
  // A log: step with a constant text takes 2 instructions, and the text crosses the limit.
  EXPECT_THAT(error, ::testing::MatchesRegex("c\\.yml:[0-9]+:10" + expected));
  int line = std::stoi(error.substr(6));
  EXPECT_EQ(line, 4 + kMaxCodeSize / 2);

  std::string text = "name: x\ntrigger: {}\nvars: {v: 1}\nsteps:\n  - log: \"";
  for (int i = 0; i < 20000; ++i) text += "${v}";
  error = message(text + "\"\n");
  EXPECT_THAT(error, ::testing::StartsWith("c.yml:5:"));
  EXPECT_THAT(error, HasSubstr(expected));

  std::string list = "name: x\ntrigger: {}\nsteps:\n  - set:\n      x: [0";
  for (int i = 1; i < 20000; ++i) list += ", " + std::to_string(i);
  error = message(list + "]\n");
  EXPECT_THAT(error, ::testing::StartsWith("c.yml:5:"));
  EXPECT_THAT(error, HasSubstr(expected));

  // The same list as an expression.
  const std::string items = list.substr(list.find('['));
  error = message("name: x\ntrigger: {}\nsteps:\n  - set:\n      x: '${" + items + "]}'\n");
  EXPECT_THAT(error, ::testing::StartsWith("c.yml:5:"));
  EXPECT_THAT(error, HasSubstr(expected));
}

// Raw YAML parser errors carry a hint on what to change.
TEST_F(CompilerTest, YamlErrorsHaveHints) {
  auto message = [&](const std::string& source) {
    auto out = compilePlaybook(source, "y.yml");
    return out.ok() ? std::string() : std::string(out.status().message());
  };
  const std::string head = "name: x\ntrigger: {}\nsteps:\n";
  EXPECT_THAT(message(head + "  - if: \"ssh\" in alert.tags\n    then: [{stop: 1}]\n"),
              HasSubstr("y.yml:4:15: invalid YAML: end of map not found; a quoted value ends at "
                        "its closing quote, so to write an expression that starts with a "
                        "quote, quote the whole expression: if: '\"ssh\" in alert.tags'"));
  EXPECT_THAT(message(head + "\t- log: a\n"),
              HasSubstr("; YAML does not allow tabs in indentation, so indent with spaces"));
  EXPECT_THAT(message(head + "  - set:\n      x: \"${'a\\q'}\"\n"),
              HasSubstr("y.yml:5:15: invalid YAML: unknown escape character: q; inside double "
                        "quotes a backslash starts an escape such as \\n or \\\", so write "
                        "\\\\ for a backslash or use single quotes"));
  EXPECT_THAT(message(head + "  - action: x.y\n    with: {a: [1, 2}\n"),
              HasSubstr("; close every [ with ] and every { with }, and quote a value that "
                        "contains them"));
  EXPECT_THAT(message(head + "  - stop: " + std::string(70, '-') + "1\n"),
              HasSubstr("syntax error: more than 64 nested '-'; remove pairs of '-', which "
                        "cancel out"));
}

// Errors inside a scalar that spans lines point at the line and column of the source
// text, although YAML has joined the lines and dropped their indentation.
TEST_F(CompilerTest, MultiLineScalarPositions) {
  auto message = [&](const std::string& source) {
    auto out = compilePlaybook(source, "p.yml");
    return out.ok() ? std::string() : std::string(out.status().message());
  };
  const std::string head = "name: x\ntrigger: {}\nsteps:\n";
  EXPECT_THAT(message(head + "  - if: alert.a == 1 and\n      alert.b == 2 and\n      nope == 3\n"
                             "    then: [{log: x}]\n"),
              HasSubstr("p.yml:6:7: undefined variable 'nope'"));
  EXPECT_THAT(message(head + "  - set:\n      x: 1 +\n        2 +\n        true\n"),
              HasSubstr("p.yml:7:9: type error"));
  EXPECT_THAT(
      message(head + "  - log: \"first line of the message\n      continues here ${nope}\"\n"),
      HasSubstr("p.yml:5:24: undefined variable 'nope'"));
  EXPECT_THAT(message(head + "  - log: |\n      first\n      then ${nope}\n"),
              HasSubstr("p.yml:6:14: undefined variable 'nope'"));
  EXPECT_THAT(message(head + "  - log: >-\n      first\n\n      then ${nope}\n"),
              HasSubstr("p.yml:7:14: undefined variable 'nope'"));
  EXPECT_THAT(message(head + "  - log: \"a\\tb\n      then ${nope}\"\n"), HasSubstr("p.yml:4:"));
  // One-line scalars keep their columns, quoted or not.
  EXPECT_THAT(message(head + "  - stop: 1 + nope\n"), HasSubstr("p.yml:4:15: undefined"));
  EXPECT_THAT(message(head + "  - stop: '${1 + nope}'\n"), HasSubstr("p.yml:4:18: undefined"));
}

// The expression parser alone: offsets of syntax errors.
TEST(ExpressionTest, ErrorOffsets) {
  ExprError error;
  EXPECT_EQ(parseExpression("1 +", error), nullptr);
  EXPECT_EQ(error.offset, 3u);
  EXPECT_EQ(parseExpression("a.1", error), nullptr);
  EXPECT_EQ(error.offset, 2u);
  EXPECT_EQ(parseExpression("f(1,", error), nullptr);
  EXPECT_EQ(error.offset, 4u);
  EXPECT_EQ(parseExpression("99999999999999999999", error), nullptr);
  EXPECT_THAT(error.message, HasSubstr("does not fit in 64 bits"));
  EXPECT_EQ(parseExpression("'a\\q'", error), nullptr);
  EXPECT_THAT(error.message, HasSubstr("unknown escape"));
  EXPECT_EQ(parseExpression(std::string(100, '(') + "1" + std::string(100, ')'), error), nullptr);
  EXPECT_THAT(error.message, HasSubstr("nests deeper than 64 levels"));
}

// Precedence: and binds tighter than or, comparison tighter than not.
TEST(ExpressionTest, Precedence) {
  ExprError error;
  auto e = parseExpression("a or b and c", error);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->text, "or");
  EXPECT_EQ(e->operands[1]->text, "and");
  e = parseExpression("not a == b", error);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->text, "not");
  EXPECT_EQ(e->operands[0]->text, "==");
  e = parseExpression("1 - 2 * 3 + 4", error);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->text, "+");
  EXPECT_EQ(e->operands[0]->text, "-");
  EXPECT_EQ(e->operands[0]->operands[1]->text, "*");
}

}  // namespace
}  // namespace vigil::playbook_vm::compiler
