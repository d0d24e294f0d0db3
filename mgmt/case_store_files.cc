// Uploaded evidence files of the case store. Bytes live once per SHA-256 in
// <evidence_dir>/<first two hex digits>/<sha256>; the case_files table says which cases
// hold which file. A file is written and fsynced (with its folder) before the row that
// points at it is committed, so a committed row never names a missing file. A crash between
// the two leaves an unreferenced file, which a later upload of the same bytes reuses.
#include <fcntl.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "mgmt/case_store.h"
#include "mgmt/internal/case_store_sql.h"

namespace vigil::mgmt {
namespace {

using internal::SqliteStatement;
using internal::WriteTransaction;

std::string sha256Hex(absl::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(digest), length));
}

// The tchar set of RFC 7231 (section 3.2.6): the characters of a type, subtype, parameter
// name or unquoted parameter value.
bool isTokenChar(char c) {
  return absl::ascii_isalnum(c) ||
         absl::string_view("!#$%&'*+-.^_`|~").find(c) != absl::string_view::npos;
}

// A character of a quoted parameter value or of a quoted pair: tab, space, visible ASCII
// or a byte of 0x80 and up (obs-text).
bool isQuotedTextChar(char c) {
  const auto byte = static_cast<unsigned char>(c);
  return byte == '\t' || (byte >= 0x20 && byte != 0x7f);
}

// Returns why `value` is not a media type as RFC 7231 (section 3.1.1.1) defines it, which
// is type "/" subtype *( OWS ";" OWS name "=" ( token / quoted-string ) ), or "" when it is
// one.
std::string mediaTypeError(absl::string_view value) {
  size_t i = 0;
  auto token = [&] {
    const size_t start = i;
    while (i < value.size() && isTokenChar(value[i])) ++i;
    return i > start;
  };
  auto skipSpace = [&] {
    while (i < value.size() && (value[i] == ' ' || value[i] == '\t')) ++i;
  };
  auto failure = [&](absl::string_view expected) {
    if (i >= value.size()) return absl::StrCat("expected ", expected, " at the end");
    const auto byte = static_cast<unsigned char>(value[i]);
    const std::string found =
        byte < 0x20 || byte == 0x7f
            ? absl::StrCat("control character 0x", absl::Hex(byte, absl::kZeroPad2))
            : absl::StrCat("'", value.substr(i, 1), "'");
    return absl::StrCat("expected ", expected, " but found ", found, " at byte ", i);
  };

  if (!token()) return failure("a type such as text");
  if (i >= value.size() || value[i] != '/') return failure("'/'");
  ++i;
  if (!token()) return failure("a subtype such as plain");
  for (;;) {
    skipSpace();
    if (i == value.size()) return "";
    if (value[i] != ';') return failure("';' before a parameter");
    ++i;
    skipSpace();
    if (!token()) return failure("a parameter name");
    if (i >= value.size() || value[i] != '=') return failure("'=' after the parameter name");
    ++i;
    if (i < value.size() && value[i] == '"') {
      ++i;
      while (i < value.size() && value[i] != '"') {
        if (value[i] == '\\') ++i;
        if (i >= value.size() || !isQuotedTextChar(value[i])) {
          return failure("a quoted parameter value");
        }
        ++i;
      }
      if (i >= value.size()) return failure("'\"' closing the quoted parameter value");
      ++i;
    } else if (!token()) {
      return failure("a parameter value");
    }
  }
}

absl::Status errnoError(absl::string_view what, const std::string& path) {
  return absl::UnavailableError(
      absl::StrCat("cannot ", what, " evidence file ", path, ": ", std::strerror(errno),
                   "; check the evidence folder's permissions and free space"));
}

absl::Status fsyncPath(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return errnoError("open", path);
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return errnoError("fsync", path);
  return absl::OkStatus();
}

std::atomic<uint64_t> temp_sequence{0};

}  // namespace

absl::StatusOr<std::string> CaseStore::writeEvidenceBlob(const std::string& sha256,
                                                         absl::string_view bytes) {
  const std::filesystem::path folder =
      std::filesystem::path(options_.evidence_dir) / sha256.substr(0, 2);
  const std::string final_path = (folder / sha256).string();
  std::error_code ec;
  if (std::filesystem::file_size(final_path, ec) == bytes.size() && !ec) return final_path;

  std::filesystem::create_directories(folder, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot create evidence folder ", folder.string(), ": ", ec.message()));
  }
  const std::string temp_path =
      (folder / absl::StrCat(".", sha256, ".", getpid(), ".", temp_sequence.fetch_add(1), ".tmp"))
          .string();
  int fd = ::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
  if (fd < 0) return errnoError("create", temp_path);
  size_t written = 0;
  while (written < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      absl::Status error = errnoError("write", temp_path);
      ::close(fd);
      ::unlink(temp_path.c_str());
      return error;
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    absl::Status error = errnoError("fsync", temp_path);
    ::close(fd);
    ::unlink(temp_path.c_str());
    return error;
  }
  ::close(fd);
  if (::rename(temp_path.c_str(), final_path.c_str()) != 0) {
    absl::Status error = errnoError("rename", temp_path);
    ::unlink(temp_path.c_str());
    return error;
  }
  if (absl::Status s = fsyncPath(folder.string(), O_RDONLY | O_DIRECTORY); !s.ok()) return s;
  return final_path;
}

absl::StatusOr<EvidenceFile> CaseStore::addEvidenceFile(int64_t case_id, const std::string& name,
                                                        const std::string& content_type,
                                                        absl::string_view bytes, const Actor& actor,
                                                        bool* added) {
  if (added != nullptr) *added = false;
  if (static_cast<int64_t>(bytes.size()) > options_.max_evidence_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("evidence file ", name, " is ", bytes.size(), " bytes; the limit is ",
                     options_.max_evidence_bytes, " bytes (cases.evidence_max_bytes)"));
  }
  if (name.empty() || name.size() > 255 || name.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("evidence name '", name, "' must be 1..255 bytes without NUL"));
  }
  if (content_type.size() > 255) {
    return absl::InvalidArgumentError("content_type is longer than 255 bytes");
  }
  // The content type goes back out in the X-Vigil-Content-Type header of a download, so it
  // must be a media type and never carry a line break or another control character.
  if (std::string error = mediaTypeError(content_type); !content_type.empty() && !error.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("content type '", content_type, "' is not a valid media type: ", error,
                     ". Send type/subtype with optional '; name=value' parameters, such as "
                     "'text/plain; charset=utf-8', or leave it out for application/octet-stream"));
  }
  EvidenceFile file;
  file.case_id = case_id;
  file.sha256 = sha256Hex(bytes);
  file.name = name;
  file.content_type = content_type.empty() ? "application/octet-stream" : content_type;
  file.size_bytes = static_cast<int64_t>(bytes.size());
  file.added_by = actor.name;

  StoreLock lock(*this);
  WriteTransaction txn(db_);
  if (!txn.status().ok()) return txn.status();
  if (absl::StatusOr<Case> c = readCaseLocked(case_id); !c.ok()) return c.status();
  {
    absl::StatusOr<SqliteStatement> existing = SqliteStatement::prepare(
        db_, "find_file",
        "SELECT name, content_type, size_bytes, added_by, added_ns FROM case_files"
        " WHERE case_id = ?1 AND sha256 = ?2");
    if (!existing.ok()) return existing.status();
    existing->bindInt(1, case_id);
    existing->bindText(2, file.sha256);
    absl::StatusOr<bool> row = existing->step();
    if (!row.ok()) return row.status();
    if (*row) {
      return EvidenceFile{case_id,
                          file.sha256,
                          existing->columnText(0),
                          existing->columnText(1),
                          existing->columnInt(2),
                          existing->columnText(3),
                          existing->columnInt(4)};
    }
  }
  absl::StatusOr<std::string> path = writeEvidenceBlob(file.sha256, bytes);
  if (!path.ok()) return path.status();

  file.added_ns = options_.clock->nowNs();
  absl::StatusOr<SqliteStatement> insert = SqliteStatement::prepare(
      db_, "insert_file",
      "INSERT INTO case_files (case_id, sha256, name, content_type, size_bytes, added_by,"
      " added_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
  if (!insert.ok()) return insert.status();
  insert->bindInt(1, case_id);
  insert->bindText(2, file.sha256);
  insert->bindText(3, file.name);
  insert->bindText(4, file.content_type);
  insert->bindInt(5, file.size_bytes);
  insert->bindText(6, file.added_by);
  insert->bindInt(7, file.added_ns);
  if (absl::Status s = insert->run(); !s.ok()) return s;
  if (absl::Status s = recordLocked(case_id, actor, "evidence_added", "file", "",
                                    absl::StrCat(file.sha256, " ", file.name));
      !s.ok()) {
    return s;
  }
  if (absl::Status s = touchLocked(case_id); !s.ok()) return s;
  if (absl::Status s = txn.commit(); !s.ok()) return s;
  if (added != nullptr) *added = true;
  VIGIL_LOG_INFO("evidence file added case={} sha256={} bytes={} actor={}", case_id, file.sha256,
                 file.size_bytes, logText(actor.name));
  return file;
}

absl::StatusOr<std::string> CaseStore::readEvidenceFile(int64_t case_id, const std::string& sha256,
                                                        EvidenceFile* meta) {
  EvidenceFile file;
  {
    StoreLock lock(*this);
    absl::StatusOr<SqliteStatement> get = SqliteStatement::prepare(
        db_, "get_file",
        "SELECT name, content_type, size_bytes, added_by, added_ns FROM case_files"
        " WHERE case_id = ?1 AND sha256 = ?2");
    if (!get.ok()) return get.status();
    get->bindInt(1, case_id);
    get->bindText(2, sha256);
    absl::StatusOr<bool> row = get->step();
    if (!row.ok()) return row.status();
    if (!*row) {
      return absl::NotFoundError(
          absl::StrCat("case ", case_id, " holds no evidence file with sha256 ", sha256));
    }
    file = {case_id,
            sha256,
            get->columnText(0),
            get->columnText(1),
            get->columnInt(2),
            get->columnText(3),
            get->columnInt(4)};
  }
  const std::string path =
      (std::filesystem::path(options_.evidence_dir) / sha256.substr(0, 2) / sha256).string();
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::DataLossError(absl::StrCat("evidence file ", path, " of case ", case_id,
                                            " is missing; restore the evidence folder"));
  }
  std::ostringstream bytes;
  bytes << in.rdbuf();
  std::string content = bytes.str();
  if (sha256Hex(content) != sha256) {
    return absl::DataLossError(
        absl::StrCat("evidence file ", path, " no longer matches its sha256; restore it"));
  }
  if (meta != nullptr) *meta = std::move(file);
  return content;
}

}  // namespace vigil::mgmt
