// Typed YAML configuration: a schema declares every key (dotted path, type, default, allowed
// range or choices, one line of help); a YAML file and `--set a.b=v` overrides are checked
// against it. An unknown or misspelt key, a wrong type or an out-of-range value is an error that
// names the key and the file (with line and column), and suggests the closest known key. The
// resolved configuration (every key, defaults included) can be printed and saved as YAML.
// Tested in tests/io/config_test.cpp.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace glia::io {

using StringList = std::vector<std::string>;
using NumberMap = std::map<std::string, double>;  // e.g. a per-source sampling ratio
using ConfigValue = std::variant<bool, std::int64_t, double, std::string, StringList, NumberMap>;

enum class ConfigType { boolean, integer, number, string, string_list, number_map };
const char* config_type_name(ConfigType type);

struct ConfigKey {
  std::string name;  // dotted path, e.g. "optim.lr"
  ConfigType type = ConfigType::number;
  ConfigValue default_value;
  std::optional<double> min;  // integer and number keys (and number-map values): inclusive bounds
  std::optional<double> max;
  StringList choices;  // string and string-list keys: the allowed values (empty = any)
  std::string help;
};

class ConfigSchema {
 public:
  ConfigSchema& add_bool(const std::string& name, bool def, std::string help);
  ConfigSchema& add_int(const std::string& name, std::int64_t def, std::optional<double> min,
                        std::optional<double> max, std::string help);
  ConfigSchema& add_number(const std::string& name, double def, std::optional<double> min,
                           std::optional<double> max, std::string help);
  ConfigSchema& add_string(const std::string& name, std::string def, StringList choices,
                           std::string help);
  ConfigSchema& add_string_list(const std::string& name, StringList def, StringList choices,
                                std::string help);
  // A map from free-form names to numbers in [min, max] (for example source -> ratio).
  ConfigSchema& add_number_map(const std::string& name, NumberMap def, std::optional<double> min,
                               std::optional<double> max, std::string help);

  const ConfigKey* find(const std::string& name) const;
  const std::vector<ConfigKey>& keys() const { return keys_; }
  // The known key closest to `name` by edit distance, for "did you mean" hints ("" if none is
  // close).
  std::string closest(const std::string& name) const;

 private:
  ConfigSchema& add(ConfigKey key);
  std::vector<ConfigKey> keys_;
};

class Config {
 public:
  // Every key at its default.
  explicit Config(const ConfigSchema& schema);

  // Defaults, then the YAML file (if not empty), then each "a.b=v" override in order. The value of
  // an override is parsed as YAML, so lists ("[brats, kaggle]") and maps ("{brats: 0.3}") work.
  static Config load(const ConfigSchema& schema, const std::filesystem::path& file,
                     const std::vector<std::string>& overrides = {});
  // Applies a YAML document (keys nested or dotted) on top of the current values; `origin` names
  // it in errors (a file name, or "--set"). Top-level keys listed in `skip` are ignored; with a
  // non-empty `section`, only the mapping under that top-level key is applied (nothing when the
  // document has no such key). Together they let one file hold common values plus per-part
  // sections, each part reading the common values and then its own section.
  void merge_yaml(const std::string& yaml_text, const std::string& origin,
                  const StringList& skip = {}, const std::string& section = "");
  // One "a.b=v" override.
  void set(const std::string& assignment);

  bool get_bool(const std::string& name) const;
  std::int64_t get_int(const std::string& name) const;
  double get_number(const std::string& name) const;
  const std::string& get_string(const std::string& name) const;
  const StringList& get_string_list(const std::string& name) const;
  const NumberMap& get_number_map(const std::string& name) const;

  // Where a key's value came from: "default", the file name, or "--set".
  const std::string& origin(const std::string& name) const;

  // The resolved configuration as nested YAML, every key, in schema order.
  std::string to_yaml() const;
  // One "key = value  (origin)" line per key, for the log at start.
  std::string describe() const;
  void save(const std::filesystem::path& path) const;  // atomic

 private:
  const ConfigValue& value(const std::string& name, ConfigType type) const;

  ConfigSchema schema_;  // a copy: a Config outlives the schema it was built from
  std::map<std::string, ConfigValue> values_;
  std::map<std::string, std::string> origins_;
};

}  // namespace glia::io
