// vigil_linescan: the limit anchors of the end-to-end benchmark. Over the same lines that
// vigild reads it does only
//   read  find every line end and touch each line (what a cat-like reader costs), or
//   hs    run one Hyperscan block scan per line against the indicator addresses and
//         domains as literals, counting lines with at least one hit.
// It prints one JSON line: lines, seconds (CPU of this thread), lines per second, hits.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include <hs.h>

namespace {

double cpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

std::vector<std::string> readList(const char* path) {
  std::vector<std::string> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    out.push_back(line);
  }
  return out;
}

// A hit counts only when the literal is not glued to a longer name or address: the bytes
// around it are no letter, digit, '.', '-' or '_'.
bool boundary(char c) {
  return !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '-' || c == '_');
}

struct ScanContext {
  std::string_view line;
  const std::vector<unsigned>* lengths;
  bool hit;
};

int onMatch(unsigned int id, unsigned long long, unsigned long long to, unsigned int,
            void* ctx) {
  auto* c = static_cast<ScanContext*>(ctx);
  size_t end = static_cast<size_t>(to);
  size_t begin = end - (*c->lengths)[id];
  bool left = begin == 0 || boundary(c->line[begin - 1]);
  bool right = end == c->line.size() || boundary(c->line[end]);
  if (left && right) {
    c->hit = true;
    return 1;  // one hit is enough for this line
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || (std::strcmp(argv[1], "read") != 0 && std::strcmp(argv[1], "hs") != 0) ||
      (std::strcmp(argv[1], "hs") == 0 && argc < 5)) {
    std::fprintf(stderr,
                 "usage: vigil_linescan read EVENTS\n"
                 "       vigil_linescan hs EVENTS IOC_IPS IOC_DOMAINS\n");
    return 2;
  }
  const bool hs_mode = std::strcmp(argv[1], "hs") == 0;
  int fd = open(argv[2], O_RDONLY);
  if (fd < 0) {
    std::fprintf(stderr, "vigil_linescan: cannot open %s: %s\n", argv[2], std::strerror(errno));
    return 2;
  }
  struct stat st;
  fstat(fd, &st);
  const size_t size = static_cast<size_t>(st.st_size);
  if (size == 0) {
    std::fprintf(stderr, "vigil_linescan: %s is empty\n", argv[2]);
    return 2;
  }
  const char* data = static_cast<const char*>(mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0));

  hs_database_t* db = nullptr;
  hs_scratch_t* scratch = nullptr;
  std::vector<unsigned> lengths;
  if (hs_mode) {
    std::vector<std::string> literals = readList(argv[3]);
    for (std::string& d : readList(argv[4])) literals.push_back(std::move(d));
    std::vector<const char*> exprs;
    std::vector<size_t> lens;
    std::vector<unsigned> flags, ids;
    for (size_t i = 0; i < literals.size(); ++i) {
      exprs.push_back(literals[i].c_str());
      lens.push_back(literals[i].size());
      lengths.push_back(static_cast<unsigned>(literals[i].size()));
      flags.push_back(HS_FLAG_CASELESS | HS_FLAG_SINGLEMATCH);
      ids.push_back(static_cast<unsigned>(i));
    }
    hs_compile_error_t* err = nullptr;
    if (hs_compile_lit_multi(exprs.data(), flags.data(), ids.data(), lens.data(),
                             static_cast<unsigned>(exprs.size()), HS_MODE_BLOCK, nullptr, &db,
                             &err) != HS_SUCCESS) {
      std::fprintf(stderr, "vigil_linescan: Hyperscan compile failed: %s\n",
                   err ? err->message : "unknown");
      return 1;
    }
    hs_alloc_scratch(db, &scratch);
  }

  // Bring the file into memory before timing, as vigild's reader finds it in the page cache.
  volatile unsigned char sink = 0;
  for (size_t i = 0; i < size; i += 4096) sink = sink + static_cast<unsigned char>(data[i]);

  uint64_t lines = 0, hits = 0, checksum = 0;
  const double t0 = cpuSeconds();
  for (size_t pos = 0; pos < size;) {
    const char* nl = static_cast<const char*>(std::memchr(data + pos, '\n', size - pos));
    size_t end = nl ? static_cast<size_t>(nl - data) : size;
    std::string_view line(data + pos, end - pos);
    ++lines;
    if (hs_mode) {
      ScanContext ctx{line, &lengths, false};
      hs_scan(db, line.data(), static_cast<unsigned>(line.size()), 0, scratch, onMatch, &ctx);
      hits += ctx.hit ? 1 : 0;
    } else {
      checksum += static_cast<unsigned char>(line.empty() ? 0 : line[line.size() / 2]);
    }
    pos = end + 1;
  }
  const double secs = cpuSeconds() - t0;
  std::printf("{\"mode\":\"%s\",\"lines\":%llu,\"bytes\":%zu,\"cpu_s\":%.4f,"
              "\"lines_per_s\":%.0f,\"hits\":%llu,\"checksum\":%llu}\n",
              argv[1], static_cast<unsigned long long>(lines), size, secs,
              static_cast<double>(lines) / secs, static_cast<unsigned long long>(hits),
              static_cast<unsigned long long>(checksum));
  if (db) hs_free_database(db);
  if (scratch) hs_free_scratch(scratch);
  return 0;
}
