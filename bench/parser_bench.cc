// Parser throughput per format. Each BM_Parse_<Format> case parses its lines in a loop
// and reports events and input bytes per second. The corpus cases read real lines at
// start. RFC 3164 comes from loghub's OpenSSH log (no PRI) and Snare's Windows 2022
// events. RFC 5424 comes from WRCCDC EvntSLog lines, of which about one in 16 carries an
// @cee JSON payload. JSON comes from Zeek and Suricata, CEF from the cef-parser test
// inputs and Tenzir's Cynet line, and LEEF from Tenzir's samples. The *Generated cases
// parse lines built here (sshd, filterlog, structured data, CEF and LEEF with common
// keys). A case fails (SkipWithError) when any line does not parse as its format, so a
// broken parser cannot post a fast number.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "common/event.h"
#include "common/ip.h"
#include "dataplane/parser.h"
#include "simdjson.h"

namespace {

using vigil::Event;
using vigil::EventFormat;

constexpr int64_t kReceiveNs = 1'717'200'000'000'000'000;  // 2024-06-01T00:00:00Z
constexpr size_t kLineCount = 512;

std::vector<std::string> rfc3164Lines() {
  std::vector<std::string> lines;
  for (size_t i = 0; i < kLineCount; ++i) {
    const std::string n = std::to_string(i);
    if (i % 2 == 0) {
      lines.push_back("<38>May " + std::to_string(1 + i % 28) + " 10:0" + std::to_string(i % 10) +
                      ":00 bastion" + n + " sshd[" + n + "]: Failed password for invalid user u" +
                      n + " from 192.0.2." + std::to_string(i % 250) + " port " +
                      std::to_string(1024 + i) + " ssh2");
    } else {
      lines.push_back("<134>May 31 23:59:" + std::to_string(10 + i % 50) + " fw" + n +
                      ".example.com filterlog[555]: 5,,,1000000103,igb0,match,block,in,4,0x0,,64,"
                      "0,0,DF,6,tcp,60,198.51.100.7,192.0.2.20 src=192.0.2." +
                      std::to_string(i % 250));
    }
  }
  return lines;
}

std::vector<std::string> rfc5424Lines() {
  std::vector<std::string> lines;
  for (size_t i = 0; i < kLineCount; ++i) {
    const std::string n = std::to_string(i);
    lines.push_back("<165>1 2024-05-31T22:14:15." + n + "Z host" + n +
                    ".example.com evntslog " + n + " ID47 [exampleSDID@32473 iut=\"3\" "
                    "eventSource=\"Appli\\\"cation\" eventID=\"" + n + "\"][meta seq=\"" + n +
                    "\"] \xEF\xBB\xBF" "An application event log entry number " + n);
  }
  return lines;
}

std::string corpusPath(std::string_view relative) {
  return std::string(VIGIL_SHARED_DIR) + "/corpus/" + std::string(relative);
}

// Appends up to `max_lines` non-empty lines of a corpus file to `lines`, without the
// line ending.
void appendCorpus(std::string_view relative, size_t max_lines, std::vector<std::string>& lines) {
  std::ifstream in(corpusPath(relative), std::ios::binary);
  std::string line;
  size_t added = 0;
  while (added < max_lines && std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    lines.push_back(line);
    ++added;
  }
}

std::vector<std::string> readCorpus(std::string_view relative, size_t max_lines) {
  std::vector<std::string> lines;
  appendCorpus(relative, max_lines, lines);
  return lines;
}

std::vector<std::string> rfc3164CorpusLines() {
  std::vector<std::string> lines;
  appendCorpus("syslog/loghub/OpenSSH_2k.log", kLineCount, lines);
  appendCorpus("syslog/snare/sample-windows2022-security.data", kLineCount / 4, lines);
  return lines;
}

std::vector<std::string> rfc5424CorpusLines() {
  return readCorpus("syslog/wrccdc/evntslog-rfc5424-cee-shared.log", kLineCount);
}

// The "input" member of every cef-parser test vector, then Tenzir's Cynet line.
std::vector<std::string> cefCorpusLines() {
  std::vector<std::filesystem::path> files;
  const std::filesystem::path dir = corpusPath("cef/cef-parser");
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    if (entry.path().extension() == ".json") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<std::string> lines;
  simdjson::dom::parser parser;
  for (const auto& file : files) {
    std::string_view input;
    if (parser.load(file.string())["input"].get(input) == simdjson::SUCCESS) {
      lines.emplace_back(input);
    }
  }
  appendCorpus("cef/tenzir/cynet.log", kLineCount, lines);
  return lines;
}

std::vector<std::string> leefCorpusLines() {
  std::vector<std::string> lines;
  for (std::string_view file : {"leef/tenzir/leef1.log", "leef/tenzir/leef2-x7C-delimiter.log",
                                "leef/tenzir/leef-over-syslog.log"}) {
    appendCorpus(file, kLineCount, lines);
  }
  return lines;
}

std::vector<std::string> jsonLines() {
  std::vector<std::string> lines;
  appendCorpus("json/zeek/wrccdc-json/rdp.json", kLineCount / 2, lines);
  appendCorpus("json/suricata/suricata8-docker-capture-shared.json", kLineCount / 2, lines);
  return lines;
}

std::vector<std::string> cefLines() {
  std::vector<std::string> lines;
  for (size_t i = 0; i < kLineCount; ++i) {
    const std::string n = std::to_string(i);
    lines.push_back("<134>May 31 23:59:" + std::to_string(10 + i % 50) + " fw" + n +
                    " CEF:0|Example\\|Corp|Firewall|1.0|" + n + "|Connection denied|5|src=192.0.2." +
                    std::to_string(i % 250) + " dst=198.51.100.7 spt=" + std::to_string(1024 + i) +
                    " dpt=443 suser=alice act=deny cs1Label=rule cs1=block all\\=" + n +
                    " msg=denied by rule " + n + " rt=1717199999" + std::to_string(100 + i % 900));
  }
  return lines;
}

std::vector<std::string> leefLines() {
  std::vector<std::string> lines;
  for (size_t i = 0; i < kLineCount; ++i) {
    const std::string n = std::to_string(i);
    lines.push_back("LEEF:2.0|Example|Sensor|1.0|" + n + "|^|src=192.0.2." +
                    std::to_string(i % 250) + "^dst=198.51.100.7^srcPort=" +
                    std::to_string(1024 + i) + "^dstPort=443^usrName=alice^cat=auth^devTime=May 31 "
                    "2024 23:59:" + std::to_string(10 + i % 50) +
                    "^devTimeFormat=MMM dd yyyy HH:mm:ss^msg=login " + n);
  }
  return lines;
}

void runParse(benchmark::State& state, const std::vector<std::string>& lines,
              EventFormat expected) {
  if (lines.empty()) {
    state.SkipWithError("no input lines (is VIGIL_SHARED_DIR readable?)");
    return;
  }
  Event event(64 * 1024);
  const vigil::dataplane::ParseOptions options;
  const auto peer = vigil::parseIp("192.0.2.1");
  // Name the first line of the wrong format before timing anything.
  for (const std::string& line : lines) {
    event.reset();
    event.raw = event.arena.copy(line);
    event.receive_ns = kReceiveNs;
    event.peer = peer;
    vigil::dataplane::parseEvent(event, options);
    if (event.format != expected) {
      const std::string error = "parsed as " + std::string(vigil::formatName(event.format)) +
                                ", not " + std::string(vigil::formatName(expected)) + ": " +
                                line.substr(0, 80);
      state.SkipWithError(error.c_str());
      return;
    }
  }
  size_t index = 0;
  int64_t bytes = 0;
  int64_t wrong_format = 0;
  for (auto _ : state) {
    const std::string& line = lines[index];
    index = index + 1 == lines.size() ? 0 : index + 1;
    event.reset();
    event.raw = event.arena.copy(line);
    event.receive_ns = kReceiveNs;
    event.peer = peer;
    vigil::dataplane::parseEvent(event, options);
    benchmark::DoNotOptimize(event.message.data());
    wrong_format += event.format != expected;
    bytes += static_cast<int64_t>(line.size());
  }
  if (wrong_format != 0) {
    state.SkipWithError("some lines did not parse as the expected format");
    return;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetBytesProcessed(bytes);
  state.counters["events_parsed"] = static_cast<double>(state.iterations());
}

void BM_Parse_Rfc3164(benchmark::State& state) {
  runParse(state, rfc3164CorpusLines(), EventFormat::kRfc3164);
}
BENCHMARK(BM_Parse_Rfc3164);

void BM_Parse_Rfc3164Generated(benchmark::State& state) {
  runParse(state, rfc3164Lines(), EventFormat::kRfc3164);
}
BENCHMARK(BM_Parse_Rfc3164Generated);

void BM_Parse_Rfc5424(benchmark::State& state) {
  runParse(state, rfc5424CorpusLines(), EventFormat::kRfc5424);
}
BENCHMARK(BM_Parse_Rfc5424);

void BM_Parse_Rfc5424Generated(benchmark::State& state) {
  runParse(state, rfc5424Lines(), EventFormat::kRfc5424);
}
BENCHMARK(BM_Parse_Rfc5424Generated);

void BM_Parse_Json(benchmark::State& state) { runParse(state, jsonLines(), EventFormat::kJson); }
BENCHMARK(BM_Parse_Json);

void BM_Parse_Cef(benchmark::State& state) { runParse(state, cefCorpusLines(), EventFormat::kCef); }
BENCHMARK(BM_Parse_Cef);

void BM_Parse_CefGenerated(benchmark::State& state) {
  runParse(state, cefLines(), EventFormat::kCef);
}
BENCHMARK(BM_Parse_CefGenerated);

void BM_Parse_Leef(benchmark::State& state) {
  runParse(state, leefCorpusLines(), EventFormat::kLeef);
}
BENCHMARK(BM_Parse_Leef);

void BM_Parse_LeefGenerated(benchmark::State& state) {
  runParse(state, leefLines(), EventFormat::kLeef);
}
BENCHMARK(BM_Parse_LeefGenerated);

}  // namespace

BENCHMARK_MAIN();
