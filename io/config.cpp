// Schema-checked YAML configuration through yaml-cpp; see config.h.
#include "io/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "io/atomic_file.h"

namespace glia::io {
namespace {

std::string where(const std::string& origin, const YAML::Node& node) {
  std::ostringstream s;
  s << origin;
  const YAML::Mark mark = node.Mark();
  if (!mark.is_null() && origin != "--set") s << ':' << mark.line + 1 << ':' << mark.column + 1;
  return s.str();
}

[[noreturn]] void fail(const std::string& origin, const YAML::Node& node, const std::string& key,
                       const std::string& what) {
  throw std::runtime_error(where(origin, node) + ": key '" + key + "': " + what);
}

std::string show(const YAML::Node& node) {
  if (node.IsScalar()) return "'" + node.Scalar() + "'";
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a mapping";
  return "nothing (null)";
}

std::string format_number(double v) {
  std::ostringstream s;
  s << std::setprecision(std::numeric_limits<double>::max_digits10) << v;
  std::string text = s.str();
  // Shortest form that reads back identically, e.g. 0.1 rather than 0.10000000000000001.
  for (int digits = 1; digits <= std::numeric_limits<double>::max_digits10; ++digits) {
    std::ostringstream t;
    t << std::setprecision(digits) << v;
    if (std::stod(t.str()) == v) {
      text = t.str();
      break;
    }
  }
  if (text.find_first_of(".eE") == std::string::npos && std::isfinite(v)) text += ".0";
  return text;
}

// For messages: integers without a fraction, others in their shortest exact form.
std::string show_number(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15) {
    return std::to_string(static_cast<long long>(v));
  }
  return format_number(v);
}

void check_range(const ConfigKey& key, double v, const std::string& origin, const YAML::Node& node,
                 const std::string& label) {
  if ((key.min && v < *key.min) || (key.max && v > *key.max)) {
    std::ostringstream range;
    range << "[" << (key.min ? show_number(*key.min) : "-inf") << ", "
          << (key.max ? show_number(*key.max) : "inf") << "]";
    fail(origin, node, label, show_number(v) + " is out of range " + range.str());
  }
}

bool parse_bool(const YAML::Node& node, bool& out) {
  if (!node.IsScalar()) return false;
  return YAML::convert<bool>::decode(node, out);
}

bool parse_int(const YAML::Node& node, std::int64_t& out) {
  if (!node.IsScalar()) return false;
  const std::string& s = node.Scalar();
  std::size_t used = 0;
  try {
    out = std::stoll(s, &used);
  } catch (const std::exception&) {
    return false;
  }
  return used == s.size();
}

bool parse_number(const YAML::Node& node, double& out) {
  if (!node.IsScalar()) return false;
  const std::string& s = node.Scalar();
  std::size_t used = 0;
  try {
    out = std::stod(s, &used);
  } catch (const std::exception&) {
    return false;
  }
  return used == s.size() && std::isfinite(out);
}

void check_choice(const ConfigKey& key, const std::string& v, const std::string& origin,
                  const YAML::Node& node) {
  if (key.choices.empty() ||
      std::find(key.choices.begin(), key.choices.end(), v) != key.choices.end()) {
    return;
  }
  std::string allowed;
  for (const auto& c : key.choices) allowed += (allowed.empty() ? "" : ", ") + c;
  fail(origin, node, key.name, "'" + v + "' is not one of: " + allowed);
}

ConfigValue parse_value(const ConfigKey& key, const YAML::Node& node, const std::string& origin) {
  switch (key.type) {
    case ConfigType::boolean: {
      bool v = false;
      if (!parse_bool(node, v))
        fail(origin, node, key.name, "expected true or false, got " + show(node));
      return v;
    }
    case ConfigType::integer: {
      std::int64_t v = 0;
      if (!parse_int(node, v))
        fail(origin, node, key.name, "expected an integer, got " + show(node));
      check_range(key, static_cast<double>(v), origin, node, key.name);
      return v;
    }
    case ConfigType::number: {
      double v = 0;
      if (!parse_number(node, v))
        fail(origin, node, key.name, "expected a number, got " + show(node));
      check_range(key, v, origin, node, key.name);
      return v;
    }
    case ConfigType::string: {
      if (!node.IsScalar()) fail(origin, node, key.name, "expected a string, got " + show(node));
      check_choice(key, node.Scalar(), origin, node);
      return node.Scalar();
    }
    case ConfigType::string_list: {
      StringList list;
      if (node.IsScalar()) {  // a single name is a one-element list
        check_choice(key, node.Scalar(), origin, node);
        list.push_back(node.Scalar());
        return list;
      }
      if (!node.IsSequence() && !node.IsNull()) {
        fail(origin, node, key.name, "expected a list of strings, got " + show(node));
      }
      for (const auto& item : node) {
        if (!item.IsScalar()) fail(origin, item, key.name, "expected a string, got " + show(item));
        check_choice(key, item.Scalar(), origin, item);
        list.push_back(item.Scalar());
      }
      return list;
    }
    case ConfigType::number_map: {
      NumberMap map;
      if (!node.IsMap() && !node.IsNull()) {
        fail(origin, node, key.name, "expected a mapping of names to numbers, got " + show(node));
      }
      for (const auto& item : node) {
        const std::string name = item.first.as<std::string>();
        double v = 0;
        if (!parse_number(item.second, v)) {
          fail(origin, item.second, key.name + "." + name,
               "expected a number, got " + show(item.second));
        }
        check_range(key, v, origin, item.second, key.name + "." + name);
        map[name] = v;
      }
      return map;
    }
  }
  throw std::logic_error("unhandled config type");
}

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

void emit_value(YAML::Emitter& out, const ConfigValue& v) {
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, bool>) {
          out << (x ? "true" : "false");
        } else if constexpr (std::is_same_v<T, std::int64_t>) {
          out << x;
        } else if constexpr (std::is_same_v<T, double>) {
          out << format_number(x);
        } else if constexpr (std::is_same_v<T, std::string>) {
          out << YAML::DoubleQuoted << x;
        } else if constexpr (std::is_same_v<T, StringList>) {
          out << YAML::Flow << YAML::BeginSeq;
          for (const auto& s : x) out << YAML::DoubleQuoted << s;
          out << YAML::EndSeq;
        } else {
          out << YAML::Flow << YAML::BeginMap;
          for (const auto& [k, d] : x) out << YAML::Key << k << YAML::Value << format_number(d);
          out << YAML::EndMap;
        }
      },
      v);
}

std::string value_text(const ConfigValue& v) {
  YAML::Emitter out;
  emit_value(out, v);
  return out.c_str();
}

}  // namespace

const char* config_type_name(ConfigType type) {
  switch (type) {
    case ConfigType::boolean:
      return "bool";
    case ConfigType::integer:
      return "int";
    case ConfigType::number:
      return "number";
    case ConfigType::string:
      return "string";
    case ConfigType::string_list:
      return "list of strings";
    case ConfigType::number_map:
      return "map of numbers";
  }
  return "?";
}

ConfigSchema& ConfigSchema::add(ConfigKey key) {
  if (key.name.empty() || key.name.front() == '.' || key.name.back() == '.') {
    throw std::invalid_argument("config schema: bad key name '" + key.name + "'");
  }
  for (const auto& k : keys_) {
    // A key may not also be the parent of another ("a" and "a.b"): the YAML could not hold both.
    if (k.name == key.name || k.name.starts_with(key.name + ".") ||
        key.name.starts_with(k.name + ".")) {
      throw std::invalid_argument("config schema: key '" + key.name + "' clashes with '" + k.name +
                                  "'");
    }
  }
  keys_.push_back(std::move(key));
  return *this;
}

ConfigSchema& ConfigSchema::add_bool(const std::string& name, bool def, std::string help) {
  return add({name, ConfigType::boolean, def, {}, {}, {}, std::move(help)});
}

ConfigSchema& ConfigSchema::add_int(const std::string& name, std::int64_t def,
                                    std::optional<double> min, std::optional<double> max,
                                    std::string help) {
  return add({name, ConfigType::integer, def, min, max, {}, std::move(help)});
}

ConfigSchema& ConfigSchema::add_number(const std::string& name, double def,
                                       std::optional<double> min, std::optional<double> max,
                                       std::string help) {
  return add({name, ConfigType::number, def, min, max, {}, std::move(help)});
}

ConfigSchema& ConfigSchema::add_string(const std::string& name, std::string def, StringList choices,
                                       std::string help) {
  return add(
      {name, ConfigType::string, std::move(def), {}, {}, std::move(choices), std::move(help)});
}

ConfigSchema& ConfigSchema::add_string_list(const std::string& name, StringList def,
                                            StringList choices, std::string help) {
  return add(
      {name, ConfigType::string_list, std::move(def), {}, {}, std::move(choices), std::move(help)});
}

ConfigSchema& ConfigSchema::add_number_map(const std::string& name, NumberMap def,
                                           std::optional<double> min, std::optional<double> max,
                                           std::string help) {
  return add({name, ConfigType::number_map, std::move(def), min, max, {}, std::move(help)});
}

const ConfigKey* ConfigSchema::find(const std::string& name) const {
  for (const auto& k : keys_) {
    if (k.name == name) return &k;
  }
  return nullptr;
}

std::string ConfigSchema::closest(const std::string& name) const {
  std::string best;
  std::size_t best_distance = std::numeric_limits<std::size_t>::max();
  for (const auto& k : keys_) {
    const std::size_t d = edit_distance(name, k.name);
    if (d < best_distance) {
      best_distance = d;
      best = k.name;
    }
  }
  // Only a near miss is worth suggesting: at most a third of the name wrong.
  return best_distance <= std::max<std::size_t>(2, name.size() / 3) ? best : std::string();
}

Config::Config(const ConfigSchema& schema) : schema_(schema) {
  for (const auto& k : schema_.keys()) {
    values_[k.name] = k.default_value;
    origins_[k.name] = "default";
  }
}

Config Config::load(const ConfigSchema& schema, const std::filesystem::path& file,
                    const std::vector<std::string>& overrides) {
  Config config(schema);
  if (!file.empty()) config.merge_yaml(read_file(file), file.string());
  for (const auto& o : overrides) config.set(o);
  return config;
}

void Config::merge_yaml(const std::string& yaml_text, const std::string& origin,
                        const StringList& skip, const std::string& section) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    throw std::runtime_error(origin + ":" + std::to_string(e.mark.line + 1) + ":" +
                             std::to_string(e.mark.column + 1) + ": invalid YAML: " + e.msg);
  }
  if (root.IsNull()) return;  // an empty file changes nothing
  if (!root.IsMap()) {
    throw std::runtime_error(where(origin, root) + ": a configuration must be a mapping of keys");
  }
  if (!section.empty()) {
    const YAML::Node part = root[section];
    if (!part) return;
    if (!part.IsMap() && !part.IsNull()) {
      throw std::runtime_error(where(origin, part) + ": section '" + section +
                               "' must be a mapping of keys");
    }
    root = part;
    if (root.IsNull()) return;
  }
  const bool top_level = section.empty();
  // Walk the mapping; a prefix that is not a key itself but begins some key is descended into.
  // Values are parsed into a staging map first so that a failing document changes nothing.
  std::map<std::string, ConfigValue> staged;
  auto walk = [&](auto&& self, const YAML::Node& map, const std::string& prefix) -> void {
    for (const auto& item : map) {
      const std::string name = prefix + item.first.as<std::string>();
      if (top_level && prefix.empty() && std::find(skip.begin(), skip.end(), name) != skip.end()) {
        continue;
      }
      if (const ConfigKey* key = schema_.find(name)) {
        if (staged.count(name)) fail(origin, item.first, name, "given twice");
        staged[name] = parse_value(*key, item.second, origin);
        continue;
      }
      const bool is_section =
          std::any_of(schema_.keys().begin(), schema_.keys().end(),
                      [&](const ConfigKey& k) { return k.name.starts_with(name + "."); });
      if (is_section) {
        if (!item.second.IsMap()) {
          fail(origin, item.second, name,
               "is a section: expected a mapping, got " + show(item.second));
        }
        self(self, item.second, name + ".");
        continue;
      }
      const std::string hint = schema_.closest(name);
      fail(origin, item.first, name,
           "unknown key" + (hint.empty() ? std::string() : " (did you mean '" + hint + "'?)"));
    }
  };
  walk(walk, root, "");
  for (auto& [name, v] : staged) {
    values_[name] = std::move(v);
    origins_[name] = origin;
  }
}

void Config::set(const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw std::invalid_argument("--set '" + assignment + "': expected key=value");
  }
  const std::string name = assignment.substr(0, eq);
  const ConfigKey* key = schema_.find(name);
  if (!key) {
    const std::string hint = schema_.closest(name);
    throw std::invalid_argument("--set: unknown key '" + name + "'" +
                                (hint.empty() ? std::string() : " (did you mean '" + hint + "'?)"));
  }
  const std::string text = assignment.substr(eq + 1);
  YAML::Node node;
  try {
    // A string key takes the text verbatim ("run.name=a: b" is the string "a: b").
    node = key->type == ConfigType::string ? YAML::Node(text) : YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw std::invalid_argument("--set: key '" + name + "': invalid value: " + e.msg);
  }
  values_[name] = parse_value(*key, node, "--set");
  origins_[name] = "--set";
}

const ConfigValue& Config::value(const std::string& name, ConfigType type) const {
  const ConfigKey* key = schema_.find(name);
  if (!key) throw std::invalid_argument("config: no key '" + name + "' in the schema");
  if (key->type != type) {
    throw std::invalid_argument(std::string("config: key '") + name + "' is a " +
                                config_type_name(key->type) + ", read as a " +
                                config_type_name(type));
  }
  return values_.at(name);
}

bool Config::get_bool(const std::string& name) const {
  return std::get<bool>(value(name, ConfigType::boolean));
}
std::int64_t Config::get_int(const std::string& name) const {
  return std::get<std::int64_t>(value(name, ConfigType::integer));
}
double Config::get_number(const std::string& name) const {
  return std::get<double>(value(name, ConfigType::number));
}
const std::string& Config::get_string(const std::string& name) const {
  return std::get<std::string>(value(name, ConfigType::string));
}
const StringList& Config::get_string_list(const std::string& name) const {
  return std::get<StringList>(value(name, ConfigType::string_list));
}
const NumberMap& Config::get_number_map(const std::string& name) const {
  return std::get<NumberMap>(value(name, ConfigType::number_map));
}

const std::string& Config::origin(const std::string& name) const {
  const auto it = origins_.find(name);
  if (it == origins_.end()) throw std::invalid_argument("config: no key '" + name + "'");
  return it->second;
}

namespace {

// The dotted keys as a tree of sections, each in the order its first key appears in the schema.
// Child sections are kept as names beside a vector of sections: a std::pair holding the still
// incomplete Section would not compile with clang and libstdc++ (the fuzz configuration).
struct Section {
  std::vector<std::pair<std::string, const ConfigKey*>> keys;  // leaf when the key is set
  std::vector<std::string> section_names;
  std::vector<Section> sections;                    // sections[i] is named section_names[i]
  std::vector<std::pair<bool, std::size_t>> order;  // (is_section, index) in first-seen order

  Section& child(const std::string& name) {
    for (std::size_t i = 0; i < sections.size(); ++i) {
      if (section_names[i] == name) return sections[i];
    }
    order.emplace_back(true, sections.size());
    section_names.push_back(name);
    sections.emplace_back();
    return sections.back();
  }
};

void emit_section(YAML::Emitter& out, const Section& section,
                  const std::map<std::string, ConfigValue>& values) {
  out << YAML::BeginMap;
  for (const auto& [is_section, i] : section.order) {
    if (is_section) {
      out << YAML::Key << section.section_names[i] << YAML::Value;
      emit_section(out, section.sections[i], values);
    } else {
      out << YAML::Key << section.keys[i].first << YAML::Value;
      emit_value(out, values.at(section.keys[i].second->name));
    }
  }
  out << YAML::EndMap;
}

}  // namespace

std::string Config::to_yaml() const {
  Section root;
  for (const auto& k : schema_.keys()) {
    Section* section = &root;
    std::size_t begin = 0;
    for (std::size_t dot; (dot = k.name.find('.', begin)) != std::string::npos; begin = dot + 1) {
      section = &section->child(k.name.substr(begin, dot - begin));
    }
    section->order.emplace_back(false, section->keys.size());
    section->keys.emplace_back(k.name.substr(begin), &k);
  }
  YAML::Emitter out;
  emit_section(out, root, values_);
  return std::string(out.c_str()) + "\n";
}

std::string Config::describe() const {
  std::size_t width = 0;
  for (const auto& k : schema_.keys()) width = std::max(width, k.name.size());
  std::ostringstream s;
  for (const auto& k : schema_.keys()) {
    s << "  " << std::left << std::setw(static_cast<int>(width)) << k.name << " = "
      << value_text(values_.at(k.name)) << "  (" << origins_.at(k.name) << ")\n";
  }
  return s.str();
}

void Config::save(const std::filesystem::path& path) const {
  write_file_atomic(path, to_yaml());
}

}  // namespace glia::io
