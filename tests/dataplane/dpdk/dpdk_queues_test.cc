// Several RX queues in DpdkSource: one ring and one thread per queue, RSS masked by what
// the port supports, and the queue views the daemon hands to the pipeline.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "dataplane/dpdk_source.h"
#include "tests/dataplane/dpdk/dpdk_test_util.h"

namespace vigil::dataplane {
namespace {

using namespace vigil::dataplane::testing;  // NOLINT(build/namespaces): test helpers

// Threads of this process whose CPU affinity is exactly `cpu_list` ("0", "0-1"), from
// Cpus_allowed_list in /proc/self/task/*/status.
int threadsPinnedTo(const std::string& cpu_list) {
  int pinned = 0;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream status(task.path() / "status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("Cpus_allowed_list:", 0) != 0) continue;
      const std::string value = line.substr(line.find_first_not_of(" \t", 18));
      pinned += value == cpu_list ? 1 : 0;
    }
  }
  return pinned;
}

// Writes `count` syslog datagrams tagged with `tag` to `path`.
void writeDatagrams(const std::string& path, const std::string& tag, int count) {
  PcapWriter pcap(path);
  ASSERT_TRUE(pcap.ok()) << path;
  for (int i = 0; i < count; ++i) {
    pcap.add(ipv4Frame(*parseIp("192.0.2.1"), 17,
                       udp(514, "<13>" + tag + " " + std::to_string(i))));
  }
}

class DpdkQueuesTest : public DpdkSourceTest {
 protected:
  uint64_t queueFrames(int queue) const {
    return metrics_.sum("vigil_dpdk_queue_frames_total",
                        {{"source", "dpdk_test"}, {"queue", std::to_string(queue)}});
  }
};

// net_pcap has no RSS but gives one RX queue per rx_pcap file: each queue's ring gets
// exactly its own file's datagrams, in order, and the queue view exposes that ring.
TEST_F(DpdkQueuesTest, PcapQueuePerFile) {
  const std::string second = (dir_ / "second.pcap").string();
  writeDatagrams(pcap_path_, "first", 20);
  writeDatagrams(second, "second", 30);

  DpdkSourceOptions o = options(pcap_path_, {},
                                "--vdev=net_pcap0,rx_pcap=" + pcap_path_ + ",rx_pcap=" + second);
  o.rx_queues = 2;
  DpdkSource source(o, metrics_, clock_);
  ASSERT_EQ(source.rxQueueCount(), 2);
  std::string error;
  ASSERT_TRUE(source.start(error)) << error;
  ASSERT_TRUE(waitFor([&] { return received() >= 50; })) << "received=" << received();
  source.stop();

  EXPECT_EQ(source.rssHashFunctions(), 0u);
  EXPECT_EQ(queueFrames(0), 20u);
  EXPECT_EQ(queueFrames(1), 30u);
  std::unique_ptr<Source> view = source.queueSource(1);
  EXPECT_EQ(view->name(), "dpdk_test.q1");
  EXPECT_EQ(view->tenant(), "acme");
  EXPECT_EQ(view->id(), 7);
  EXPECT_EQ(&view->ring(), &source.queueRing(1));
  EXPECT_EQ(&source.ring(), &source.queueRing(0));

  RawRing& ring0 = source.queueRing(0);
  RawRing& ring1 = view->ring();
  ASSERT_EQ(ring0.size(), 20u);
  ASSERT_EQ(ring1.size(), 30u);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(ring0.front()->view(), "<13>first " + std::to_string(i));
    ring0.pop();
  }
  for (int i = 0; i < 30; ++i) {
    EXPECT_EQ(ring1.front()->view(), "<13>second " + std::to_string(i));
    ring1.pop();
  }
}

// More queues than the port has is rejected with the port's maximum and the fix.
TEST_F(DpdkQueuesTest, TooManyQueuesRejected) {
  writeDatagrams(pcap_path_, "only", 1);
  DpdkSourceOptions o = options(pcap_path_);
  o.rx_queues = 2;
  DpdkSource source(o, metrics_, clock_);
  std::string error;
  EXPECT_FALSE(source.start(error));
  EXPECT_NE(error.find("rx_queues=2 exceeds the port's maximum of 1"), std::string::npos) << error;
  EXPECT_NE(error.find("one rx_pcap= file per queue"), std::string::npos) << error;
}

// net_null reports RSS support, so 4 queues get RSS with the requested IP and UDP hash
// functions masked by the port's flow_type_rss_offloads. Every queue's thread polls, pinned
// to the CPU that lcores gives it.
TEST_F(DpdkQueuesTest, NullPortRssOverQueues) {
  DpdkSourceOptions o = options("", {}, "--vdev=net_null0");
  o.rx_queues = 4;
  o.rx_descriptors = 256;
  o.mbuf_pool_size = 4 * (2 * 256 + 32) + 64;
  o.lcores = {0, 0, 0, 0};
  DpdkSource source(o, metrics_, clock_);
  std::string error;
  ASSERT_TRUE(source.start(error)) << error;
  ASSERT_TRUE(waitFor([&] {
    return queueFrames(0) > 0 && queueFrames(1) > 0 && queueFrames(2) > 0 && queueFrames(3) > 0;
  })) << queueFrames(0) << " " << queueFrames(1) << " " << queueFrames(2) << " " << queueFrames(3);
  // lcores pins every RX thread to CPU 0. The thread that called rte_eal_init had its
  // affinity restored, so only EAL's own threads could add to the count.
  EXPECT_GE(threadsPinnedTo("0"), 4);
  source.stop();

  // net_null offers every function requested, so all of them are configured. In DPDK
  // 22.11's rte_ethdev.h these are the bits of RTE_ETH_RSS_IPV4 (2), FRAG_IPV4 (3),
  // NONFRAG_IPV4_UDP (5), IPV6 (8), FRAG_IPV6 (9) and NONFRAG_IPV6_UDP (11).
  EXPECT_EQ(source.rssHashFunctions(), 0xb2cu);
  // net_null frames carry no valid Ethernet payload, so each is received or dropped, and
  // the queue counters add up to the frames the source accounted for.
  const uint64_t frames = queueFrames(0) + queueFrames(1) + queueFrames(2) + queueFrames(3);
  EXPECT_EQ(received() + allDrops(), frames);
}

}  // namespace
}  // namespace vigil::dataplane
