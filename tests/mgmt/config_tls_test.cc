#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "mgmt/config.h"

namespace vigil::mgmt {
namespace {

namespace fs = std::filesystem;

// A temporary folder with a self-signed certificate and key made by the openssl command,
// used as server certificate and CA alike, plus files that are not PEM at all. The config
// reader loads the PEM files, so a broken one fails with the config file and line.
class TlsConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string templ = (fs::temp_directory_path() / "vigil-tls-config-XXXXXX").string();
    ASSERT_NE(::mkdtemp(templ.data()), nullptr);
    dir_ = templ;
    const std::string d = "'" + dir_.string() + "'";
    auto makePair = [&](const std::string& stem) {
      const std::string command =
          "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
          "-subj /CN=" + stem + " -keyout " + d + "/" + stem + ".key -out " + d + "/" + stem +
          ".pem >>" + d + "/openssl.log 2>&1";
      return std::system(command.c_str()) == 0;
    };
    ASSERT_TRUE(makePair("server") && makePair("other")) << "openssl failed; see " << dir_;
    const std::string encrypt = "openssl pkey -in " + d +
                                "/server.key -aes256 -passout "
                                "pass:S3cret -out " +
                                d + "/encrypted.key >>" + d + "/openssl.log 2>&1";
    ASSERT_EQ(std::system(encrypt.c_str()), 0) << "openssl failed; see " << dir_;
    fs::copy_file(dir_ / "server.pem", dir_ / "ca.pem");
    std::ofstream(dir_ / "garbage.pem") << "placeholder\n";
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
      {"sources: [{name: s, type: tls, certificate: garbage.pem, private_key: server.key}]\n",
       "test.yaml:1: sources[0]: certificate '" + path("garbage.pem") +
           "' could not be loaded; give a readable PEM certificate chain"},
      {"sources: [{name: s, type: tls, certificate: server.pem, private_key: garbage.pem}]\n",
       "private_key '" + path("garbage.pem") + "' could not be loaded"},
      {"sources: [{name: s, type: tls, certificate: server.pem, private_key: other.key}]\n",
       "private_key '" + path("other.key") + "' does not match certificate '" +
           path("server.pem") + "'"},
      {"sources: [{name: s, type: tls, certificate: server.pem, private_key: server.key, "
       "ca_file: garbage.pem, verify_client: required}]\n",
       "ca_file '" + path("garbage.pem") + "' could not be loaded"},
  };
  for (const Case& c : cases) {
    auto result = parse(c.yaml);
    ASSERT_FALSE(result.ok()) << c.yaml;
    EXPECT_NE(std::string(result.status().message()).find(c.expected), std::string::npos)
        << "yaml: " << c.yaml << "\nerror: " << result.status().message();
  }
}

// An encrypted key fails at once with an error that names the file and requires an
// unencrypted key. OpenSSL must not prompt for a pass phrase.
TEST_F(TlsConfigTest, EncryptedKeyIsRejectedWithoutPrompt) {
  auto source = parse(
      "sources: [{name: s, type: tls, certificate: server.pem, private_key: encrypted.key}]\n");
  ASSERT_FALSE(source.ok());
  EXPECT_NE(std::string(source.status().message())
                .find("test.yaml:1: sources[0]: private_key '" + path("encrypted.key") +
                      "' is encrypted; vigil does not ask for pass phrases, so give an "
                      "unencrypted PEM key"),
            std::string::npos)
      << source.status();
}

// api.tls is loaded while the file is checked, as a tls source is, so a key that does not
// match its certificate fails the check instead of the start.
TEST_F(TlsConfigTest, ApiTlsFilesAreLoadedByTheCheck) {
  auto mismatch = parse(
      "api:\n  listen: 127.0.0.1:8443\n  tls:\n    certificate: server.pem\n"
      "    private_key: other.key\n");
  ASSERT_FALSE(mismatch.ok());
  EXPECT_NE(std::string(mismatch.status().message())
                .find("test.yaml:5: api.tls: private_key '" + path("other.key") +
                      "' does not match certificate '" + path("server.pem") + "'"),
            std::string::npos)
      << mismatch.status();

  auto api = parse(
      "api:\n  listen: 127.0.0.1:8443\n  tls:\n    certificate: server.pem\n"
      "    private_key: encrypted.key\n");
  ASSERT_FALSE(api.ok());
  EXPECT_NE(
      std::string(api.status().message())
          .find("test.yaml:5: api.tls: private_key '" + path("encrypted.key") + "' is encrypted"),
      std::string::npos)
      << api.status();

  auto bad_ca = parse(
      "api:\n  listen: 127.0.0.1:8443\n  tls: {certificate: server.pem, "
      "private_key: server.key, client_ca_file: garbage.pem}\n");
  ASSERT_FALSE(bad_ca.ok());
  EXPECT_NE(std::string(bad_ca.status().message()).find("ca_file '" + path("garbage.pem") + "'"),
            std::string::npos)
      << bad_ca.status();

  auto good = parse(
      "api:\n  listen: 127.0.0.1:8443\n  tls: {certificate: server.pem, "
      "private_key: server.key, client_ca_file: ca.pem}\n");
  EXPECT_TRUE(good.ok()) << good.status();
}

// A tls source on the port of a tcp source is rejected, and the error names the other
// source's type.
TEST_F(TlsConfigTest, ListenConflictNamesOtherType) {
  auto result = parse(
      "sources:\n  - {name: a, type: tcp, listen: '127.0.0.1:5514'}\n"
      "  - {name: b, type: tls, listen: '127.0.0.1:5514', certificate: server.pem, "
      "private_key: server.key}\n");
  ASSERT_FALSE(result.ok());
  EXPECT_NE(std::string(result.status().message())
                .find("test.yaml:3: sources[1].listen: '127.0.0.1:5514' is already used by the "
                      "tcp source 'a' (sources[0].listen)"),
            std::string::npos)
      << result.status();
}

}  // namespace
}  // namespace vigil::mgmt
