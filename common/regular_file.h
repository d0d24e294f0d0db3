// Opening and reading input files that must be regular files. A FIFO given where a file
// is expected makes open() wait for a writer, and a device or a socket can block read()
// with no end, so these are rejected before the first read.
#pragma once

#include <sys/types.h>

#include <string>

namespace vigil {

// Result of openRegularFile().
struct OpenedFile {
  int fd = -1;      // read-only, blocking, close-on-exec; -1 on failure. The caller closes it.
  int error = 0;    // errno of the failed open() or fstat(), else 0
  mode_t mode = 0;  // file type and permissions, when open() and fstat() succeeded

  bool ok() const { return fd >= 0; }
};

// Opens `path` read-only. The open() uses O_NONBLOCK, so it returns at once when `path` is
// a FIFO without a writer. Fails (fd -1) when open() or fstat() fails, with `error` set,
// or when the file is not a regular file, with `error` 0 and `mode` telling its type.
OpenedFile openRegularFile(const std::string& path);

// Names a file type for messages: "a folder", "a FIFO", "a character device",
// "a block device", "a socket", "a regular file" or "an unknown file type".
const char* fileTypeName(mode_t mode);

// Appends what is left to read from `fd` to `out`, retrying a read() that EINTR
// interrupted. Returns 0 at the end of the file, or the errno of the read() that failed.
int readToEnd(int fd, std::string& out);

}  // namespace vigil
