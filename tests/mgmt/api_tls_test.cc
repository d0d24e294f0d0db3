// HTTPS on the API: a certificate made with the openssl command at test time, clients that
// trust it, clients that do not, and client-certificate checks.
#include <gtest/gtest.h>
#include <httplib.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "auth_test_util.h"
#include "mgmt/api_server.h"
#include "mgmt/config.h"
#include "mgmt_test_util.h"

namespace vigil::mgmt {
namespace {

// Makes a CA, a server certificate for 127.0.0.1 and a client certificate, all signed by
// the CA, in `dir`. Returns false when openssl fails (its output is in dir/openssl.log).
bool makePki(const std::string& dir) {
  const std::string log = " >>" + dir + "/openssl.log 2>&1";
  const std::string key = "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes ";
  auto run = [&](const std::string& command) { return std::system((command + log).c_str()) == 0; };
  bool ok = run(key + "-x509 -days 2 -subj /CN=vigil-test-ca -keyout " + dir + "/ca.key -out " +
                dir + "/ca.pem");
  for (const std::string name : {"server", "client"}) {
    ok = ok && run(key + "-subj /CN=" + name + " -keyout " + dir + "/" + name + ".key -out " +
                   dir + "/" + name + ".csr");
    std::string ext = dir + "/" + name + ".ext";
    std::ofstream(ext) << "subjectAltName=IP:127.0.0.1\n";
    ok = ok && run("openssl x509 -req -days 2 -in " + dir + "/" + name + ".csr -CA " + dir +
                   "/ca.pem -CAkey " + dir + "/ca.key -CAcreateserial -extfile " + ext +
                   " -out " + dir + "/" + name + ".pem");
  }
  return ok;
}

class ApiTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(makePki(dir_.file(""))) << "openssl failed; see " << dir_.file("openssl.log");
    auto store = CaseStore::open(dir_.file("cases.db"));
    ASSERT_TRUE(store.ok());
    store_ = *std::move(store);
    auth_ = std::make_unique<testing::TestAuth>(dir_.file(""));
  }

  void start(bool client_certs) {
    ApiServerOptions options;
    options.listen = "127.0.0.1:0";
    options.tls.cert_file = dir_.file("server.pem");
    options.tls.key_file = dir_.file("server.key");
    if (client_certs) options.tls.client_ca_file = dir_.file("ca.pem");
    auth_->apply(options);
    server_ = std::make_unique<ApiServer>(*store_, metrics_, options);
    absl::Status started = server_->start();
    ASSERT_TRUE(started.ok()) << started;
  }

  std::unique_ptr<httplib::SSLClient> client() {
    auto c = std::make_unique<httplib::SSLClient>("127.0.0.1", server_->port());
    c->set_ca_cert_path(dir_.file("ca.pem").c_str());
    c->enable_server_certificate_verification(true);
    c->set_bearer_token_auth(auth_->adminToken());
    return c;
  }

  testing::TempDir dir_;
  MetricsRegistry metrics_;
  std::unique_ptr<CaseStore> store_;
  std::unique_ptr<testing::TestAuth> auth_;
  std::unique_ptr<ApiServer> server_;
};

// A client that trusts the CA gets answers; plain HTTP to the same port gets none.
TEST_F(ApiTlsTest, ServesHttpsOnly) {
  start(false);
  httplib::Result ok = client()->Get("/api/v1/whoami");
  ASSERT_TRUE(ok) << httplib::to_string(ok.error());
  EXPECT_EQ(ok->status, 200) << ok->body;

  httplib::Client plain("127.0.0.1", server_->port());
  plain.set_connection_timeout(2);
  plain.set_read_timeout(2);
  httplib::Result refused = plain.Get("/healthz");
  EXPECT_TRUE(!refused || refused->status != 200);
}

// A client that trusts only the system CAs rejects the server's certificate.
TEST_F(ApiTlsTest, UntrustedCertificateFails) {
  start(false);
  httplib::SSLClient untrusting("127.0.0.1", server_->port());
  untrusting.enable_server_certificate_verification(true);
  httplib::Result result = untrusting.Get("/healthz");
  EXPECT_FALSE(result);
}

// With client_ca_file the server requires a client certificate signed by that CA.
TEST_F(ApiTlsTest, ClientCertificateRequired) {
  start(true);
  EXPECT_FALSE(client()->Get("/healthz"));
  httplib::SSLClient with_cert("127.0.0.1", server_->port(), dir_.file("client.pem"),
                               dir_.file("client.key"));
  with_cert.set_ca_cert_path(dir_.file("ca.pem").c_str());
  with_cert.enable_server_certificate_verification(true);
  httplib::Result result = with_cert.Get("/healthz");
  ASSERT_TRUE(result) << httplib::to_string(result.error());
  EXPECT_EQ(result->status, 200);
}

// Files that are not a certificate and key fail start() with a message naming them.
TEST_F(ApiTlsTest, BadFilesFailStart) {
  ApiServerOptions options;
  options.listen = "127.0.0.1:0";
  options.tls.cert_file = dir_.file("server.key");
  options.tls.key_file = dir_.file("server.pem");
  ApiServer bad(*store_, metrics_, options);
  absl::Status status = bad.start();
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_NE(status.message().find("server.key"), absl::string_view::npos) << status;
}

// An encrypted key fails start() at once with the reason; the server never prompts for a
// pass phrase on the terminal.
TEST_F(ApiTlsTest, EncryptedKeyFailsStartWithoutPrompt) {
  const std::string encrypted = dir_.file("encrypted.key");
  ASSERT_EQ(std::system(("openssl pkey -in " + dir_.file("server.key") +
                         " -aes256 -passout pass:S3cret -out " + encrypted + " >>" +
                         dir_.file("openssl.log") + " 2>&1")
                            .c_str()),
            0);
  ApiServerOptions options;
  options.listen = "127.0.0.1:0";
  options.tls.cert_file = dir_.file("server.pem");
  options.tls.key_file = encrypted;
  ApiServer bad(*store_, metrics_, options);
  absl::Status status = bad.start();
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_NE(status.message().find("private_key '" + encrypted + "' is encrypted"),
            absl::string_view::npos)
      << status;
}

// The config accepts api.tls, and refuses plain HTTP on a non-loopback address with the fix.
TEST_F(ApiTlsTest, ConfigRules) {
  auto tls = parseConfig(
      "api:\n  listen: 0.0.0.0:8443\n  tls: {certificate: server.pem, private_key: server.key,"
      " client_ca_file: ca.pem}\n",
      "test.yaml", dir_.file(""));
  ASSERT_TRUE(tls.ok()) << tls.status();
  EXPECT_EQ(tls->api_tls_certificate, dir_.file("server.pem"));
  EXPECT_EQ(tls->api_tls_client_ca_file, dir_.file("ca.pem"));

  auto plain = parseConfig("api: {listen: '0.0.0.0:8080'}\n", "test.yaml", dir_.file(""));
  ASSERT_FALSE(plain.ok());
  EXPECT_NE(plain.status().message().find("api.tls.certificate"), absl::string_view::npos)
      << plain.status();
  EXPECT_NE(plain.status().message().find("0.0.0.0:8080"), absl::string_view::npos);

  for (const char* loopback : {"127.0.0.1:8080", "127.1.2.3:8080", "[::1]:8080"}) {
    auto ok = parseConfig(std::string("api: {listen: '") + loopback + "'}\n", "test.yaml",
                          dir_.file(""));
    EXPECT_TRUE(ok.ok()) << loopback << ": " << ok.status();
  }
  auto disabled = parseConfig("api: {enabled: false, listen: '0.0.0.0:8080'}\n", "test.yaml",
                              dir_.file(""));
  EXPECT_TRUE(disabled.ok()) << disabled.status();

  auto half = parseConfig("api:\n  tls: {certificate: server.pem}\n", "test.yaml", dir_.file(""));
  ASSERT_FALSE(half.ok());
  EXPECT_NE(half.status().message().find("private_key"), absl::string_view::npos);
  auto missing = parseConfig("api:\n  tls: {certificate: nope.pem, private_key: server.key}\n",
                             "test.yaml", dir_.file(""));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("nope.pem"), absl::string_view::npos);
}

}  // namespace
}  // namespace vigil::mgmt
