// RFC 4180 reading and writing of the manifest; see manifest.h. The reader is a small state
// machine over the whole file so that quoted fields may span lines; each field remembers the
// line and column where it starts, for error messages.
#include "io/manifest.h"

#include <array>
#include <charconv>
#include <sstream>
#include <stdexcept>

#include "io/atomic_file.h"

namespace glia::io {
namespace {

constexpr std::array<const char*, 9> kColumns = {"path",     "split",        "source",
                                                 "patient",  "slice",        "label",
                                                 "has_mask", "tumor_pixels", "kept_fraction"};
// Manifests from before kept_fraction hold only the columns up to tumor_pixels.
constexpr std::size_t kRequiredColumns = 8;

struct Field {
  std::string text;
  int line = 0;
  int column = 0;  // 1-based character column of the field's first character
};

std::string where(const std::filesystem::path& csv, int line, int column) {
  return csv.string() + ":" + std::to_string(line) + ":" + std::to_string(column);
}

// Splits the file into records of fields. A final line end is optional; blank lines are skipped.
std::vector<std::vector<Field>> parse_csv(const std::filesystem::path& csv,
                                          const std::string& text) {
  std::vector<std::vector<Field>> records;
  std::vector<Field> record;
  Field field;
  int line = 1, column = 1;
  bool at_field_start = true, quoted = false, after_quote = false;
  auto end_field = [&] {
    record.push_back(std::move(field));
    field = Field{};
    at_field_start = true;
    quoted = after_quote = false;
  };
  auto end_record = [&] {
    bool blank = record.size() == 1 && record[0].text.empty();
    if (!blank) records.push_back(std::move(record));
    record.clear();
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (at_field_start) {
      field.line = line;
      field.column = column;
      at_field_start = false;
      if (c == '"') {
        quoted = true;
        ++column;
        continue;
      }
    }
    if (quoted && !after_quote) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field.text += '"';
          ++i;
          column += 2;
          continue;
        }
        after_quote = true;
        ++column;
        continue;
      }
      field.text += c;
      if (c == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
      continue;
    }
    if (c == ',') {
      end_field();
      ++column;
      continue;
    }
    if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') continue;
    if (c == '\n') {
      end_field();
      end_record();
      ++line;
      column = 1;
      continue;
    }
    if (after_quote) {
      throw std::runtime_error(where(csv, line, column) +
                               ": unexpected character after a closing quote");
    }
    if (c == '"') {
      throw std::runtime_error(where(csv, line, column) +
                               ": a double quote inside an unquoted field (quote the field)");
    }
    field.text += c;
    ++column;
  }
  if (quoted && !after_quote) {
    throw std::runtime_error(where(csv, field.line, field.column) + ": unterminated quoted field");
  }
  if (!at_field_start || !record.empty()) {
    end_field();
    end_record();
  }
  return records;
}

template <typename T>
T parse_integer(const std::filesystem::path& csv, const Field& f, const char* name) {
  T value{};
  const char* first = f.text.data();
  const char* last = first + f.text.size();
  auto [ptr, ec] = std::from_chars(first, last, value);
  if (f.text.empty() || ec != std::errc() || ptr != last) {
    throw std::runtime_error(where(csv, f.line, f.column) + ": column '" + name +
                             "' must be an integer, got '" + f.text + "'");
  }
  return value;
}

// Empty: unknown; otherwise a number in [0, 1].
std::optional<double> parse_fraction(const std::filesystem::path& csv, const Field& f,
                                     const char* name) {
  if (f.text.empty()) return std::nullopt;
  double value = 0;
  const char* first = f.text.data();
  const char* last = first + f.text.size();
  auto [ptr, ec] = std::from_chars(first, last, value);
  if (ec != std::errc() || ptr != last || !(value >= 0.0 && value <= 1.0)) {
    throw std::runtime_error(where(csv, f.line, f.column) + ": column '" + name +
                             "' must be empty or a number in [0, 1], got '" + f.text + "'");
  }
  return value;
}

void check_one_of(const std::filesystem::path& csv, const Field& f, const char* name,
                  std::initializer_list<const char*> allowed) {
  std::string list;
  for (const char* a : allowed) {
    if (f.text == a) return;
    list += list.empty() ? a : std::string("|") + a;
  }
  throw std::runtime_error(where(csv, f.line, f.column) + ": column '" + name + "' must be " +
                           list + ", got '" + f.text + "'");
}

void write_field(std::ostringstream& out, const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) {
    out << s;
    return;
  }
  out << '"';
  for (char c : s) {
    if (c == '"') out << '"';
    out << c;
  }
  out << '"';
}

}  // namespace

std::vector<ManifestEntry> read_manifest(const std::filesystem::path& csv) {
  auto records = parse_csv(csv, read_file(csv));
  if (records.empty()) throw std::runtime_error(csv.string() + ": empty manifest (no header)");
  const auto& header = records[0];
  for (std::size_t c = 0; c < kRequiredColumns; ++c) {
    if (c >= header.size() || header[c].text != kColumns[c]) {
      int column = c < header.size() ? header[c].column : 1;
      throw std::runtime_error(where(csv, 1, column) + ": header column " + std::to_string(c + 1) +
                               " must be '" + kColumns[c] + "' (header path,split,source," +
                               "patient,slice,label,has_mask,tumor_pixels[,kept_fraction])");
    }
  }
  if (header.size() > kRequiredColumns && header[kRequiredColumns].text != kColumns.back()) {
    throw std::runtime_error(where(csv, 1, header[kRequiredColumns].column) +
                             ": header column 9 must be 'kept_fraction', got '" +
                             header[kRequiredColumns].text + "'");
  }
  if (header.size() > kColumns.size()) {
    throw std::runtime_error(where(csv, 1, header[kColumns.size()].column) +
                             ": the header has more than 9 columns");
  }
  const std::size_t columns = header.size();
  std::vector<ManifestEntry> entries;
  entries.reserve(records.size() - 1);
  for (std::size_t r = 1; r < records.size(); ++r) {
    const auto& f = records[r];
    if (f.size() != columns) {
      throw std::runtime_error(where(csv, f[0].line, f[0].column) + ": expected " +
                               std::to_string(columns) + " fields, got " +
                               std::to_string(f.size()));
    }
    ManifestEntry e;
    if (f[0].text.empty()) {
      throw std::runtime_error(where(csv, f[0].line, f[0].column) + ": column 'path' is empty");
    }
    e.path = f[0].text;
    check_one_of(csv, f[1], "split", {"train", "val", "test"});
    e.split = f[1].text;
    check_one_of(csv, f[2], "source", {"brats", "kaggle"});
    e.source = f[2].text;
    e.patient = f[3].text;
    e.slice = parse_integer<int>(csv, f[4], "slice");
    e.label = parse_integer<int>(csv, f[5], "label");
    check_one_of(csv, f[6], "has_mask", {"0", "1"});
    e.has_mask = f[6].text == "1";
    e.tumor_pixels = parse_integer<std::int64_t>(csv, f[7], "tumor_pixels");
    if (columns > kRequiredColumns) e.kept_fraction = parse_fraction(csv, f[8], "kept_fraction");
    entries.push_back(std::move(e));
  }
  return entries;
}

void write_manifest(const std::filesystem::path& csv, const std::vector<ManifestEntry>& entries) {
  std::ostringstream out;
  for (std::size_t c = 0; c < kColumns.size(); ++c) out << (c ? "," : "") << kColumns[c];
  out << '\n';
  for (const auto& e : entries) {
    write_field(out, e.path);
    out << ',';
    write_field(out, e.split);
    out << ',';
    write_field(out, e.source);
    out << ',';
    write_field(out, e.patient);
    out << ',' << e.slice << ',' << e.label << ',' << (e.has_mask ? 1 : 0) << ',' << e.tumor_pixels
        << ',';
    if (e.kept_fraction) {
      // Shortest text that reads back to the same double, independent of the locale.
      char buf[32];
      auto [end, ec] = std::to_chars(buf, buf + sizeof buf, *e.kept_fraction);
      out.write(buf, end - buf);
    }
    out << '\n';
  }
  write_file_atomic(csv, out.str());
}

}  // namespace glia::io
