#include "common/thread_name.h"

#include <pthread.h>

#include <algorithm>
#include <array>

namespace vigil {

void nameThisThread(std::string_view name) {
  std::array<char, 16> text{};  // the kernel's TASK_COMM_LEN, with the terminating NUL
  const size_t length = std::min(name.size(), text.size() - 1);
  std::copy_n(name.data(), length, text.data());
  // Fails only for a name longer than 15 bytes, which the copy above prevents.
  pthread_setname_np(pthread_self(), text.data());
}

}  // namespace vigil
