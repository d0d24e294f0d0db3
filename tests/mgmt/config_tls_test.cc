#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "mgmt/config.h"

namespace vigil::mgmt {
namespace {

namespace fs = std::filesystem;

// A temporary folder with placeholder PEM files. The config reader checks only that the
// files are readable; TlsSource parses them.
class TlsConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string templ = (fs::temp_directory_path() / "vigil-tls-config-XXXXXX").string();
    ASSERT_NE(::mkdtemp(templ.data()), nullptr);
    dir_ = templ;
    for (const char* name : {"server.pem", "server.key", "ca.pem"}) {
      std::ofstream(dir_ / name) << "placeholder\n";
    }
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  absl::StatusOr<DaemonConfig> parse(const std::string& yaml) const {
    return parseConfig(yaml, "test.yaml", dir_.string());
  }

  std::string path(const char* name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

// A tls source reads its files relative to the config folder and listens on 6514 by
// default.
TEST_F(TlsConfigTest, ParsesTlsSource) {
  auto c = parse(R"(
sources:
  - name: secure
    type: tls
    certificate: server.pem
    private_key: server.key
    ca_file: ca.pem
    verify_client: required
    framing: octet_counting
)");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->sources.size(), 1u);
  const SourceConfig& s = c->sources[0];
  EXPECT_EQ(s.type, "tls");
  EXPECT_EQ(s.listen, "127.0.0.1:6514");
  EXPECT_EQ(s.certificate, path("server.pem"));
  EXPECT_EQ(s.private_key, path("server.key"));
  EXPECT_EQ(s.ca_file, path("ca.pem"));
  EXPECT_EQ(s.verify_client, "required");
  EXPECT_EQ(s.framing, "octet_counting");
}

// verify_client defaults to none, which needs no ca_file.
TEST_F(TlsConfigTest, VerifyClientDefaultsToNone) {
  auto c = parse("sources: [{name: s, type: tls, certificate: server.pem, "
                 "private_key: server.key, listen: '[::1]:7514'}]\n");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->sources[0].verify_client, "none");
  EXPECT_TRUE(c->sources[0].ca_file.empty());
  EXPECT_EQ(c->sources[0].listen, "[::1]:7514");
}

// Each bad tls setting is rejected with the key and, for files, the resolved path.
TEST_F(TlsConfigTest, TlsErrorsNameKeyAndFile) {
  struct Case {
    std::string yaml;
    std::string expected;
  };
  const Case cases[] = {
      {"sources: [{name: s, type: tls, private_key: server.key}]\n",
       "sources[0].certificate: missing"},
      {"sources: [{name: s, type: tls, certificate: server.pem}]\n",
       "sources[0].private_key: missing"},
      {"sources: [{name: s, type: tls, certificate: nothere.pem, private_key: server.key}]\n",
       "sources[0].certificate: '" + path("nothere.pem") + "' is not a readable file"},
      {"sources: [{name: s, type: tls, certificate: server.pem, private_key: server.key, "
       "ca_file: noca.pem, verify_client: optional}]\n",
       "sources[0].ca_file: '" + path("noca.pem") + "' is not a readable file"},
      {"sources: [{name: s, type: tls, certificate: server.pem, private_key: server.key, "
       "verify_client: required}]\n",
       "sources[0].ca_file: missing; verify_client: required needs"},
      {"sources: [{name: s, type: tls, certificate: server.pem, private_key: server.key, "
       "verify_client: always}]\n",
       "sources[0].verify_client: 'always' is not one of none, optional, required"},
  };
  for (const Case& c : cases) {
    auto result = parse(c.yaml);
    ASSERT_FALSE(result.ok()) << c.yaml;
    EXPECT_NE(std::string(result.status().message()).find(c.expected), std::string::npos)
        << "yaml: " << c.yaml << "\nerror: " << result.status().message();
  }
}

}  // namespace
}  // namespace vigil::mgmt
