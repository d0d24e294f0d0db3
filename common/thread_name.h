// Names for vigild's threads, so that top -H, ps -L, perf and gdb show which part of the
// process each thread is.
#pragma once

#include <string_view>

namespace vigil {

// Names the calling thread. Linux keeps at most 15 bytes of a thread name; longer names
// are cut.
void nameThisThread(std::string_view name);

}  // namespace vigil
