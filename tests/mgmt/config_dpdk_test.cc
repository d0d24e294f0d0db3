// The keys of a dpdk source in vigild's YAML configuration: defaults, every option, and
// errors that name the line, the key and the accepted values.
#include <gtest/gtest.h>

#include <string>

#include "mgmt/config.h"

namespace vigil::mgmt {
namespace {

absl::StatusOr<DaemonConfig> parse(const std::string& yaml) {
  return parseConfig(yaml, "test.yaml", "/etc/vigil");
}

const char kDpdkHead[] =
    "sources:\n"
    "  - name: nic0\n"
    "    type: dpdk\n"
    "    eal_args: [-l, '0', --no-huge]\n";

// A dpdk source with only eal_args gets the documented defaults.
TEST(ConfigDpdkTest, DefaultsApplied) {
  auto c = parse(kDpdkHead);
  ASSERT_TRUE(c.ok()) << c.status();
  const SourceConfig& s = c->sources[0];
  EXPECT_EQ(s.port, "");
  EXPECT_EQ(s.rx_queues, 1);
  EXPECT_TRUE(s.lcores.empty());
  EXPECT_EQ(s.rx_descriptors, 1024);
  EXPECT_EQ(s.idle_sleep_us, 20u);
  EXPECT_FALSE(s.reassemble_fragments);
  EXPECT_EQ(s.fragment_max_flows, 1024u);
  EXPECT_EQ(s.fragment_timeout_ms, 2000u);
  EXPECT_EQ(s.exception, "drop");
  EXPECT_EQ(s.exception_port, "");
}

// Every dpdk key is read into SourceConfig.
TEST(ConfigDpdkTest, AllKeysRead) {
  auto c = parse(std::string(kDpdkHead) +
                 "    port: net_pcap0\n"
                 "    rx_queues: 2\n"
                 "    lcores: [2, 3]\n"
                 "    rx_descriptors: 2048\n"
                 "    idle_sleep_us: 0\n"
                 "    reassemble_fragments: true\n"
                 "    fragment_max_flows: 4096\n"
                 "    fragment_timeout_ms: 500\n"
                 "    exception: kernel\n"
                 "    exception_port: net_tap0\n");
  ASSERT_TRUE(c.ok()) << c.status();
  const SourceConfig& s = c->sources[0];
  EXPECT_EQ(s.port, "net_pcap0");
  EXPECT_EQ(s.rx_queues, 2);
  ASSERT_EQ(s.lcores.size(), 2u);
  EXPECT_EQ(s.lcores[0], 2);
  EXPECT_EQ(s.lcores[1], 3);
  EXPECT_EQ(s.rx_descriptors, 2048);
  EXPECT_EQ(s.idle_sleep_us, 0u);
  EXPECT_TRUE(s.reassemble_fragments);
  EXPECT_EQ(s.fragment_max_flows, 4096u);
  EXPECT_EQ(s.fragment_timeout_ms, 500u);
  EXPECT_EQ(s.exception, "kernel");
  EXPECT_EQ(s.exception_port, "net_tap0");
}

// Each bad value is rejected with its line, key, value and the accepted range or choices.
TEST(ConfigDpdkTest, BadValuesRejected) {
  struct Case {
    std::string yaml;
    std::string error;
  };
  const Case cases[] = {
      {"    rx_queues: 0\n", "test.yaml:5: sources[0].rx_queues: '0' is not a number in [1, 64]"},
      {"    rx_queues: 65\n", "'65' is not a number in [1, 64]"},
      {"    lcores: 3\n", "sources[0].lcores: must be a list of numbers in [0, 1023]"},
      {"    lcores: [1, 2000]\n", "sources[0].lcores: '2000' is not a number in [0, 1023]"},
      {"    rx_queues: 2\n    lcores: [1]\n",
       "sources[0].lcores: lists 1 CPUs but rx_queues is 2; give one CPU per RX queue"},
      {"    rx_descriptors: 8\n", "sources[0].rx_descriptors: '8' is not a number in [32, 16384]"},
      {"    idle_sleep_us: -1\n", "sources[0].idle_sleep_us: '-1' is not a number in [0, 100000]"},
      {"    reassemble_fragments: maybe\n",
       "sources[0].reassemble_fragments: 'maybe' is not true or false"},
      {"    fragment_max_flows: 0\n",
       "sources[0].fragment_max_flows: '0' is not a number in [1, 65536]"},
      {"    fragment_timeout_ms: 60001\n",
       "sources[0].fragment_timeout_ms: '60001' is not a number in [1, 60000]"},
      {"    exception: forward\n", "sources[0].exception: 'forward' is not one of drop, kernel"},
      // The parser applies the source's own limit, so the error names the line.
      {"    max_message_bytes: 100000\n",
       "test.yaml:5: sources[0].max_message_bytes: 100000 is more than a dpdk source takes; "
       "give 64 to 65536"},
      {"    exception: kernel\n",
       "sources[0].exception_port: missing; exception: kernel needs the net_tap device"},
  };
  for (const Case& c : cases) {
    auto config = parse(std::string(kDpdkHead) + c.yaml);
    ASSERT_FALSE(config.ok()) << c.yaml;
    EXPECT_NE(std::string(config.status().message()).find(c.error), std::string::npos)
        << c.yaml << " -> " << config.status().message();
  }
}

// DPDK keys on a kernel source are rejected instead of being ignored.
TEST(ConfigDpdkTest, DpdkKeysOnUdpRejected) {
  auto c = parse(
      "sources:\n"
      "  - name: u\n"
      "    type: udp\n"
      "    rx_queues: 2\n");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(std::string(c.status().message()).find("rx_queues: does not apply to a udp source"),
            std::string::npos)
      << c.status().message();
}

}  // namespace
}  // namespace vigil::mgmt
