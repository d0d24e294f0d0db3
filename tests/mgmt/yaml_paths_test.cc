// expandYamlPaths(): the folder expansion behind rules.paths and playbooks.paths.
#include "mgmt/yaml_paths.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace vigil::mgmt {
namespace {

class YamlPathsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("vigil-yaml-paths-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string touch(const std::string& name) {
    const std::filesystem::path path = dir_ / name;
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path) << "x: 1\n";
    return path.string();
  }

  std::filesystem::path dir_;
};

// Sorted, sub-folders included, any case of extension, hidden entries skipped, each file
// once however often it is reached.
TEST_F(YamlPathsTest, ExpandsFolders) {
  const std::string b = touch("pb/b.yaml");
  const std::string a = touch("pb/sub/a.YML");
  touch("pb/notes.txt");
  touch("pb/.swap.yml");
  touch("pb/.git/config.yml");
  auto files = expandYamlPaths({(dir_ / "pb").string(), a, (dir_ / "pb").string()},
                               "playbooks.paths", "playbook");
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_EQ(*files, (std::vector<std::string>{b, a}));
}

// Errors name the configuration key, the path and the kind of file expected.
TEST_F(YamlPathsTest, Errors) {
  std::filesystem::create_directories(dir_ / "empty");
  touch("empty/readme.txt");
  auto empty = expandYamlPaths({(dir_ / "empty").string()}, "playbooks.paths", "playbook");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().message(),
            "playbooks.paths: folder " + (dir_ / "empty").string() +
                " contains no *.yml or *.yaml file (sub-folders included); check the path");
  auto missing = expandYamlPaths({(dir_ / "gone.yml").string()}, "rules.paths", "rule");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(), "rules.paths: " + (dir_ / "gone.yml").string() +
                                            " is neither a rule file nor a folder");
  auto blank = expandYamlPaths({""}, "playbooks.paths", "playbook");
  ASSERT_FALSE(blank.ok());
  EXPECT_EQ(blank.status().message(),
            "playbooks.paths: an entry is empty; give a playbook file or a folder of them");
}

}  // namespace
}  // namespace vigil::mgmt
