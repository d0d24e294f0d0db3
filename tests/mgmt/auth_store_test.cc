#include "mgmt/auth_store.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>

#include "mgmt/case_store.h"
#include "mgmt/content_store.h"
#include "mgmt/run_store.h"
#include "mgmt_test_util.h"

namespace vigil::mgmt {
namespace {

using testing::kSecond;
using testing::kT0;

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

class AuthStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = AuthStore::open(dir_.file("auth.db"), &clock_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    ASSERT_TRUE(store_->createTenant("acme").ok());
    ASSERT_TRUE(store_->createTenant("globex").ok());
  }

  IssuedToken mint(Role role, std::vector<std::string> tenants, int64_t expires_ns = 0) {
    TokenRequest request;
    request.name = "someone@example.com";
    request.role = role;
    request.tenants = std::move(tenants);
    request.expires_ns = expires_ns;
    request.created_by = "test";
    auto issued = store_->createToken(request);
    EXPECT_TRUE(issued.ok()) << issued.status();
    return issued.ok() ? *issued : IssuedToken{};
  }

  static std::string bearer(const std::string& token) { return "Bearer " + token; }

  testing::TempDir dir_;
  SimulatedClock clock_{kT0};
  std::unique_ptr<AuthStore> store_;
};

// A token has the vgl_<16 hex>_<64 hex> form and authenticates to its role and tenants.
TEST_F(AuthStoreTest, IssuedTokenAuthenticates) {
  IssuedToken issued = mint(Role::kAnalyst, {"globex", "acme", "acme"});
  ASSERT_EQ(issued.token.size(), 4u + 16 + 1 + 64);
  EXPECT_EQ(issued.token.substr(0, 4), "vgl_");
  EXPECT_EQ(issued.token.substr(4, 16), issued.info.id);
  EXPECT_EQ(issued.info.tenants, (std::vector<std::string>{"acme", "globex"}));

  AuthResult result = store_->authenticate(bearer(issued.token));
  ASSERT_TRUE(result.ok()) << result.message;
  EXPECT_EQ(result.principal.token_id, issued.info.id);
  EXPECT_EQ(result.principal.subject, "someone@example.com");
  EXPECT_EQ(result.principal.role, Role::kAnalyst);
  EXPECT_EQ(result.principal.tenants, (std::vector<std::string>{"acme", "globex"}));
}

// The database holds only the SHA-256 of the secret, never the token text.
TEST_F(AuthStoreTest, SecretIsStoredOnlyAsHash) {
  IssuedToken issued = mint(Role::kAdmin, {});
  const std::string secret = issued.token.substr(4 + 16 + 1);
  testing::RawDb raw(dir_.file("auth.db"));
  EXPECT_EQ(raw.queryText("SELECT COUNT(*) FROM tokens WHERE secret_sha256 = '" + secret + "'"),
            "0");
  EXPECT_EQ(raw.queryText("SELECT length(secret_sha256) FROM tokens"), "64");
  store_.reset();
  std::string bytes = readFile(dir_.file("auth.db")) + readFile(dir_.file("auth.db-wal"));
  EXPECT_EQ(bytes.find(secret), std::string::npos);
}

// Each kind of bad header maps to its own failure reason.
TEST_F(AuthStoreTest, FailureReasons) {
  IssuedToken issued = mint(Role::kReadOnly, {"acme"});
  std::string wrong_secret = issued.token;
  wrong_secret.back() = wrong_secret.back() == '0' ? '1' : '0';
  std::string unknown_id = issued.token;
  unknown_id[4] = unknown_id[4] == '0' ? '1' : '0';

  EXPECT_EQ(store_->authenticate("").failure, AuthFailure::kMissing);
  EXPECT_EQ(store_->authenticate("Basic dXNlcjpwdw==").failure, AuthFailure::kMalformed);
  EXPECT_EQ(store_->authenticate("Bearer vgl_short").failure, AuthFailure::kMalformed);
  EXPECT_EQ(store_->authenticate(bearer(issued.token + "0")).failure, AuthFailure::kMalformed);
  EXPECT_EQ(store_->authenticate(bearer(unknown_id)).failure, AuthFailure::kUnknown);
  AuthResult bad = store_->authenticate(bearer(wrong_secret));
  EXPECT_EQ(bad.failure, AuthFailure::kBadSecret);
  EXPECT_EQ(bad.token_id, issued.info.id);
  EXPECT_EQ(bad.message.find(wrong_secret.substr(21)), std::string::npos);
  EXPECT_TRUE(store_->authenticate("bearer " + issued.token).ok());
}

// A token stops working at its expiry time and after revocation.
TEST_F(AuthStoreTest, ExpiryAndRevocation) {
  IssuedToken expiring = mint(Role::kAnalyst, {"acme"}, kT0 + 10 * kSecond);
  IssuedToken revoked = mint(Role::kAnalyst, {"acme"});
  EXPECT_TRUE(store_->authenticate(bearer(expiring.token)).ok());
  clock_.advanceNs(10 * kSecond);
  EXPECT_EQ(store_->authenticate(bearer(expiring.token)).failure, AuthFailure::kExpired);

  auto info = store_->revokeToken(revoked.info.id);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->revoked_ns, kT0 + 10 * kSecond);
  EXPECT_EQ(store_->authenticate(bearer(revoked.token)).failure, AuthFailure::kRevoked);
  EXPECT_TRUE(absl::IsNotFound(store_->revokeToken("0000000000000000").status()));
}

// last_used is written on use, then at most once a minute.
TEST_F(AuthStoreTest, LastUsedIsThrottled) {
  IssuedToken issued = mint(Role::kAnalyst, {"acme"});
  ASSERT_TRUE(store_->authenticate(bearer(issued.token)).ok());
  EXPECT_EQ(store_->getToken(issued.info.id)->last_used_ns, kT0);
  clock_.advanceNs(30 * kSecond);
  ASSERT_TRUE(store_->authenticate(bearer(issued.token)).ok());
  EXPECT_EQ(store_->getToken(issued.info.id)->last_used_ns, kT0);
  clock_.advanceNs(31 * kSecond);
  ASSERT_TRUE(store_->authenticate(bearer(issued.token)).ok());
  EXPECT_EQ(store_->getToken(issued.info.id)->last_used_ns, kT0 + 61 * kSecond);
}

// Token requests that make no sense are rejected with the reason.
TEST_F(AuthStoreTest, BadTokenRequests) {
  TokenRequest admin_with_tenant{"a", Role::kAdmin, {"acme"}, 0, "t"};
  EXPECT_TRUE(absl::IsInvalidArgument(store_->createToken(admin_with_tenant).status()));
  TokenRequest analyst_without{"a", Role::kAnalyst, {}, 0, "t"};
  EXPECT_TRUE(absl::IsInvalidArgument(store_->createToken(analyst_without).status()));
  TokenRequest unknown_tenant{"a", Role::kAnalyst, {"initech"}, 0, "t"};
  auto status = store_->createToken(unknown_tenant).status();
  EXPECT_TRUE(absl::IsInvalidArgument(status));
  EXPECT_NE(status.message().find("initech"), absl::string_view::npos) << status;
  TokenRequest past{"a", Role::kAnalyst, {"acme"}, kT0 - 1, "t"};
  EXPECT_TRUE(absl::IsInvalidArgument(store_->createToken(past).status()));
  TokenRequest no_name{"", Role::kAnalyst, {"acme"}, 0, "t"};
  EXPECT_TRUE(absl::IsInvalidArgument(store_->createToken(no_name).status()));
  TokenRequest bad_utf8{"ana\xff", Role::kAnalyst, {"acme"}, 0, "t"};
  status = store_->createToken(bad_utf8).status();
  EXPECT_TRUE(absl::IsInvalidArgument(status));
  EXPECT_NE(status.message().find("not valid UTF-8 at byte 3"), absl::string_view::npos) << status;
}

// Tenants: names are checked, duplicates rejected, and a tenant with an active token stays.
TEST_F(AuthStoreTest, TenantLifecycle) {
  EXPECT_TRUE(absl::IsAlreadyExists(store_->createTenant("acme")));
  EXPECT_TRUE(store_->ensureTenant("acme").ok());
  for (const char* bad : {"", "-lead", "has space", "semi;colon", "x/y"}) {
    EXPECT_TRUE(absl::IsInvalidArgument(store_->createTenant(bad))) << bad;
  }
  IssuedToken token = mint(Role::kAnalyst, {"globex"});
  absl::Status busy = store_->deleteTenant("globex");
  EXPECT_TRUE(absl::IsFailedPrecondition(busy)) << busy;
  ASSERT_TRUE(store_->revokeToken(token.info.id).ok());
  EXPECT_TRUE(store_->deleteTenant("globex").ok());
  EXPECT_TRUE(absl::IsNotFound(store_->deleteTenant("globex")));
  auto tenants = store_->listTenants();
  ASSERT_TRUE(tenants.ok());
  ASSERT_EQ(tenants->size(), 1u);
  EXPECT_EQ((*tenants)[0].name, "acme");
}

// hasActiveAdmin ignores revoked and expired admin tokens.
TEST_F(AuthStoreTest, ActiveAdmin) {
  EXPECT_FALSE(*store_->hasActiveAdmin());
  IssuedToken admin = mint(Role::kAdmin, {}, kT0 + kSecond);
  EXPECT_TRUE(*store_->hasActiveAdmin());
  clock_.advanceNs(kSecond);
  EXPECT_FALSE(*store_->hasActiveAdmin());
}

// A state database that is not SQLite fails to open with its path and what to do, for
// every store vigild opens at start.
TEST(DamagedStoreTest, OpenNamesFileAndFix) {
  testing::TempDir dir;
  const std::string garbage(8192, 'x');
  auto damage = [&](const std::string& name) {
    const std::string path = dir.file(name);
    std::ofstream(path, std::ios::binary) << garbage;
    return path;
  };
  const std::string fix = " is damaged or not an SQLite database: stop vigild, then restore it "
                          "from a backup, or move it (with its -wal and -shm files) aside";
  const std::string auth = damage("auth.db");
  auto auth_store = AuthStore::open(auth);
  ASSERT_FALSE(auth_store.ok());
  EXPECT_NE(auth_store.status().message().find(auth + fix), std::string::npos)
      << auth_store.status();
  const std::string runs = damage("runs.db");
  auto run_store = RunStore::open(runs);
  ASSERT_FALSE(run_store.ok());
  EXPECT_NE(run_store.status().message().find(runs + fix), std::string::npos)
      << run_store.status();
  const std::string cases = damage("cases.db");
  auto case_store = CaseStore::open(cases);
  ASSERT_FALSE(case_store.ok());
  EXPECT_NE(case_store.status().message().find(cases + fix), std::string::npos)
      << case_store.status();
  const std::string content = damage("content.db");
  auto content_store = ContentStore::open(content);
  ASSERT_FALSE(content_store.ok());
  EXPECT_NE(content_store.status().message().find(content + fix), std::string::npos)
      << content_store.status();
}

}  // namespace
}  // namespace vigil::mgmt
