// The typed YAML configuration: defaults, nested and dotted keys, --set overrides, every error case
// naming the key and the file, and a resolved dump that reads back to the same values.
#include "io/config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "io/atomic_file.h"

namespace glia::io {
namespace {

namespace fs = std::filesystem;

ConfigSchema training_schema() {
  ConfigSchema s;
  s.add_int("train.epochs", 10, 1, 10000, "passes over the training set")
      .add_number("optim.lr", 1e-3, 0.0, 1.0, "learning rate")
      .add_bool("train.amp", false, "mixed precision")
      .add_string("optim.name", "adam", {"adam", "adamw", "sgd"}, "optimiser")
      .add_string_list("data.sources", {"brats", "kaggle"}, {"brats", "kaggle"}, "sources used")
      .add_number_map("sampler.source_ratio", {}, 0.0, 1.0, "per-batch source ratio")
      .add_string("run.name", "demo", {}, "free text");
  return s;
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           (std::string("glia_config_") +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path write(const std::string& name, const std::string& text) {
    const fs::path p = dir_ / name;
    std::ofstream(p) << text;
    return p;
  }
  fs::path dir_;
};

TEST_F(ConfigTest, DefaultsApplyWhenNoFileIsGiven) {
  const Config c = Config::load(training_schema(), {});
  EXPECT_EQ(c.get_int("train.epochs"), 10);
  EXPECT_DOUBLE_EQ(c.get_number("optim.lr"), 1e-3);
  EXPECT_FALSE(c.get_bool("train.amp"));
  EXPECT_EQ(c.get_string("optim.name"), "adam");
  EXPECT_EQ(c.get_string_list("data.sources"), (StringList{"brats", "kaggle"}));
  EXPECT_TRUE(c.get_number_map("sampler.source_ratio").empty());
  EXPECT_EQ(c.origin("optim.lr"), "default");
}

TEST_F(ConfigTest, NestedAndDottedKeysAndOverridesInOrder) {
  const fs::path f = write("a.yaml",
                           "train:\n  epochs: 3\noptim.lr: 0.01\ndata:\n  sources: kaggle\n"
                           "sampler:\n  source_ratio: {brats: 0.3, kaggle: 0.7}\n");
  const Config c = Config::load(training_schema(), f, {"optim.lr=0.5", "optim.name=sgd"});
  EXPECT_EQ(c.get_int("train.epochs"), 3);
  EXPECT_DOUBLE_EQ(c.get_number("optim.lr"), 0.5);
  EXPECT_EQ(c.origin("optim.lr"), "--set");
  EXPECT_EQ(c.origin("train.epochs"), f.string());
  EXPECT_EQ(c.get_string("optim.name"), "sgd");
  EXPECT_EQ(c.get_string_list("data.sources"), (StringList{"kaggle"}));
  const NumberMap ratio = c.get_number_map("sampler.source_ratio");
  EXPECT_DOUBLE_EQ(ratio.at("brats"), 0.3);
  EXPECT_DOUBLE_EQ(ratio.at("kaggle"), 0.7);
}

TEST_F(ConfigTest, OverrideValuesAreYaml) {
  Config c(training_schema());
  c.set("data.sources=[brats]");
  c.set("sampler.source_ratio={kaggle: 1}");
  EXPECT_EQ(c.get_string_list("data.sources"), (StringList{"brats"}));
  EXPECT_DOUBLE_EQ(c.get_number_map("sampler.source_ratio").at("kaggle"), 1.0);
}

TEST_F(ConfigTest, UnknownKeyNamesKeyFileLineAndSuggestion) {
  const fs::path f = write("typo.yaml", "train:\n  epoch: 3\n");
  const std::string e = error_of([&] { Config::load(training_schema(), f); });
  EXPECT_NE(e.find("typo.yaml:2:"), std::string::npos) << e;
  EXPECT_NE(e.find("'train.epoch'"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'train.epochs'"), std::string::npos) << e;
  const std::string unknown = error_of([&] { Config(training_schema()).set("nothing.like=1"); });
  EXPECT_NE(unknown.find("'nothing.like'"), std::string::npos) << unknown;
  EXPECT_EQ(unknown.find("did you mean"), std::string::npos) << unknown;
}

TEST_F(ConfigTest, WrongTypesAreNamed) {
  const struct {
    const char* yaml;
    const char* key;
    const char* expect;
  } cases[] = {
      {"train: {epochs: many}\n", "train.epochs", "expected an integer"},
      {"train: {epochs: 2.5}\n", "train.epochs", "expected an integer"},
      {"optim: {lr: fast}\n", "optim.lr", "expected a number"},
      {"train: {amp: maybe}\n", "train.amp", "expected true or false"},
      {"optim: {name: [adam]}\n", "optim.name", "expected a string"},
      {"data: {sources: {a: 1}}\n", "data.sources", "expected a list"},
      {"sampler: {source_ratio: {brats: high}}\n", "sampler.source_ratio.brats", "a number"},
      {"train: 5\n", "train", "is a section"},
  };
  for (const auto& c : cases) {
    const fs::path f = write("bad.yaml", c.yaml);
    const std::string e = error_of([&] { Config::load(training_schema(), f); });
    EXPECT_NE(e.find(std::string("'") + c.key + "'"), std::string::npos) << c.yaml << " -> " << e;
    EXPECT_NE(e.find(c.expect), std::string::npos) << c.yaml << " -> " << e;
    EXPECT_NE(e.find("bad.yaml"), std::string::npos) << e;
  }
}

TEST_F(ConfigTest, OutOfRangeAndBadChoicesAreNamed) {
  Config c(training_schema());
  std::string e = error_of([&] { c.set("train.epochs=0"); });
  EXPECT_NE(e.find("'train.epochs'"), std::string::npos) << e;
  EXPECT_NE(e.find("0 is out of range [1, 10000]"), std::string::npos) << e;
  e = error_of([&] { c.set("optim.lr=-1e-3"); });
  EXPECT_NE(e.find("out of range"), std::string::npos) << e;
  e = error_of([&] { c.set("optim.name=rmsprop"); });
  EXPECT_NE(e.find("'rmsprop' is not one of: adam, adamw, sgd"), std::string::npos) << e;
  e = error_of([&] { c.set("data.sources=[brats, mri]"); });
  EXPECT_NE(e.find("'mri'"), std::string::npos) << e;
  e = error_of([&] { c.set("sampler.source_ratio={brats: 2}"); });
  EXPECT_NE(e.find("'sampler.source_ratio.brats'"), std::string::npos) << e;
  e = error_of([&] { c.set("optim.lr"); });
  EXPECT_NE(e.find("key=value"), std::string::npos) << e;
  // A failed override leaves the previous value.
  EXPECT_EQ(c.get_int("train.epochs"), 10);
}

TEST_F(ConfigTest, AFailingFileChangesNothing) {
  Config c(training_schema());
  const std::string e =
      error_of([&] { c.merge_yaml("train: {epochs: 4}\noptim: {lr: 7}\n", "partial.yaml"); });
  EXPECT_NE(e.find("partial.yaml:2:"), std::string::npos) << e;
  EXPECT_EQ(c.get_int("train.epochs"), 10);
}

TEST_F(ConfigTest, InvalidYamlAndNonMappingsAreReported) {
  const fs::path f = write("broken.yaml", "train: {epochs: 3\n");
  std::string e = error_of([&] { Config::load(training_schema(), f); });
  EXPECT_NE(e.find("broken.yaml"), std::string::npos) << e;
  EXPECT_NE(e.find("invalid YAML"), std::string::npos) << e;
  e = error_of([&] { Config(training_schema()).merge_yaml("- a\n- b\n", "list.yaml"); });
  EXPECT_NE(e.find("list.yaml"), std::string::npos) << e;
  e = error_of([&] { Config::load(training_schema(), dir_ / "missing.yaml"); });
  EXPECT_NE(e.find("missing.yaml"), std::string::npos) << e;
  e = error_of([&] {
    Config(training_schema()).merge_yaml("train: {epochs: 2}\ntrain.epochs: 3\n", "twice.yaml");
  });
  EXPECT_NE(e.find("given twice"), std::string::npos) << e;
}

TEST_F(ConfigTest, ResolvedYamlReadsBackToTheSameValues) {
  Config c(training_schema());
  c.set("optim.lr=0.1");
  c.set("train.epochs=7");
  c.set("run.name=a \"quoted\" name: with colon");
  c.set("sampler.source_ratio={brats: 0.25, kaggle: 0.75}");
  c.save(dir_ / "resolved.yaml");
  const Config back = Config::load(training_schema(), dir_ / "resolved.yaml");
  EXPECT_EQ(c.to_yaml(), back.to_yaml());
  const ConfigSchema schema = training_schema();
  for (const auto& k : schema.keys()) {
    EXPECT_EQ(back.origin(k.name), (dir_ / "resolved.yaml").string()) << k.name;
  }
  EXPECT_DOUBLE_EQ(back.get_number("optim.lr"), 0.1);
  EXPECT_EQ(back.get_string("run.name"), "a \"quoted\" name: with colon");
  // Sections appear once each, even when their keys are not adjacent in the schema.
  const std::string yaml = read_file(dir_ / "resolved.yaml");
  EXPECT_EQ(yaml.find("train:"), yaml.rfind("train:")) << yaml;
  EXPECT_NE(c.describe().find("optim.lr"), std::string::npos);
  EXPECT_NE(c.describe().find("(--set)"), std::string::npos);
}

TEST_F(ConfigTest, SectionsOverrideCommonValues) {
  const std::string yaml =
      "train: {epochs: 3}\noptim: {lr: 0.01}\n"
      "part2:\n  train: {epochs: 9}\npart3: {optim.lr: 0.2}\n";
  Config two(training_schema());
  two.merge_yaml(yaml, "pipeline.yaml", {"part2", "part3"});
  two.merge_yaml(yaml, "pipeline.yaml", {}, "part2");
  EXPECT_EQ(two.get_int("train.epochs"), 9);
  EXPECT_DOUBLE_EQ(two.get_number("optim.lr"), 0.01);
  Config three(training_schema());
  three.merge_yaml(yaml, "pipeline.yaml", {"part2", "part3"});
  three.merge_yaml(yaml, "pipeline.yaml", {}, "part3");
  EXPECT_EQ(three.get_int("train.epochs"), 3);
  EXPECT_DOUBLE_EQ(three.get_number("optim.lr"), 0.2);
  Config one(training_schema());
  one.merge_yaml(yaml, "pipeline.yaml", {"part2", "part3"});
  one.merge_yaml(yaml, "pipeline.yaml", {}, "part1");  // no such section: nothing changes
  EXPECT_EQ(one.get_int("train.epochs"), 3);
  // A key error inside a section still names the file and the line.
  const std::string e = error_of([&] {
    Config(training_schema()).merge_yaml("part2:\n  train: {epoks: 1}\n", "p.yaml", {}, "part2");
  });
  EXPECT_NE(e.find("p.yaml:2:"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'train.epochs'"), std::string::npos) << e;
}

TEST_F(ConfigTest, SchemaRejectsClashingKeysAndWrongReads) {
  ConfigSchema s;
  s.add_int("a.b", 1, {}, {}, "");
  EXPECT_THROW(s.add_int("a", 1, {}, {}, ""), std::invalid_argument);
  EXPECT_THROW(s.add_int("a.b.c", 1, {}, {}, ""), std::invalid_argument);
  EXPECT_THROW(s.add_int("a.b", 1, {}, {}, ""), std::invalid_argument);
  const Config c(s);
  EXPECT_THROW(c.get_number("a.b"), std::invalid_argument);
  EXPECT_THROW(c.get_int("a.x"), std::invalid_argument);
}

}  // namespace
}  // namespace glia::io
