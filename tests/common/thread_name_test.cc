#include "common/thread_name.h"

#include <gtest/gtest.h>
#include <pthread.h>

#include <string>
#include <thread>

namespace vigil {
namespace {

// Names a new thread and reads the name back as the kernel keeps it.
std::string nameOfThreadNamed(const std::string& name) {
  std::string read_back;
  std::thread thread([&] {
    nameThisThread(name);
    char buffer[32] = {};
    if (pthread_getname_np(pthread_self(), buffer, sizeof(buffer)) == 0) read_back = buffer;
  });
  thread.join();
  return read_back;
}

TEST(ThreadNameTest, NamesCallingThread) {
  EXPECT_EQ(nameOfThreadNamed("vigil-case-sink"), "vigil-case-sink");
  EXPECT_EQ(nameOfThreadNamed("vigil-x"), "vigil-x");
}

TEST(ThreadNameTest, CutsNamesPastFifteenBytes) {
  EXPECT_EQ(nameOfThreadNamed("vigil-playbook-worker-12"), "vigil-playbook-");
}

}  // namespace
}  // namespace vigil
