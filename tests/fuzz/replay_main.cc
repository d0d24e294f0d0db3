// Replays inputs through LLVMFuzzerTestOneInput once each, in sorted order, so ctest
// catches a regression on any seed or saved crash input without a fuzzing engine.
//
//   replay DIR...              every file under each folder is one input
//   replay --lines PATH ...    every line of PATH (a file, or each file under a folder) is
//                              one input, without its line end. This suits the shared
//                              corpus, whose files contain many messages each.
//
// Folders and files may be mixed with --lines in any order; --lines applies to the one
// path after it. Exits non-zero when a path is missing or nothing was replayed.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

constexpr size_t kMaxLineBytes = 64 * 1024;

std::vector<std::filesystem::path> filesUnder(const std::filesystem::path& path) {
  std::vector<std::filesystem::path> files;
  if (std::filesystem::is_regular_file(path)) {
    files.push_back(path);
  } else {
    for (const auto& entry : std::filesystem::recursive_directory_iterator(path)) {
      if (entry.is_regular_file()) files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string readAll(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void feed(const std::string& bytes) {
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

}  // namespace

int main(int argc, char** argv) {
  size_t replayed = 0;
  for (int i = 1; i < argc; ++i) {
    const bool by_lines = std::strcmp(argv[i], "--lines") == 0;
    if (by_lines && ++i == argc) {
      std::fprintf(stderr, "--lines needs a file or folder after it\n");
      return 2;
    }
    const std::filesystem::path path(argv[i]);
    if (!std::filesystem::exists(path)) {
      std::fprintf(stderr, "corpus path not found: %s\n", argv[i]);
      return 2;
    }
    for (const auto& file : filesUnder(path)) {
      const std::string bytes = readAll(file);
      if (!by_lines) {
        feed(bytes);
        ++replayed;
        continue;
      }
      size_t start = 0;
      while (start < bytes.size()) {
        size_t end = bytes.find('\n', start);
        if (end == std::string::npos) end = bytes.size();
        size_t stop = end;
        if (stop > start && bytes[stop - 1] == '\r') --stop;
        if (stop > start && stop - start <= kMaxLineBytes) {
          feed(bytes.substr(start, stop - start));
          ++replayed;
        }
        start = end + 1;
      }
    }
  }
  if (replayed == 0) {
    std::fprintf(stderr, "no corpus inputs replayed; pass the corpus folder\n");
    return 2;
  }
  std::printf("replayed %zu inputs\n", replayed);
  return 0;
}
