// NumPy .npy encoding/decoding and .npz archives through libzip; see npy.h for the layout.
#include "io/npy.h"

#include <zip.h>

#include <array>
#include <cctype>
#include <cstring>
#include <ctime>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>

#include "io/atomic_file.h"

namespace glia::io {
namespace {

constexpr std::string_view kMagic = "\x93NUMPY";
constexpr std::size_t kAlign = 64;                // numpy's ARRAY_ALIGN
constexpr std::size_t kGrowthAxisMaxDigits = 21;  // numpy's GROWTH_AXIS_MAX_DIGITS

struct DType {
  char kind;  // 'f' float, 'i' signed, 'u' unsigned, 'b' bool, 'U' UTF-32 string
  std::size_t itemsize;
};

// Parses and canonicalises a dtype string: one-byte types take '|', multi-byte ones '<' ('=' is
// little-endian on every platform glia runs on). Returns nullopt for anything unsupported.
std::optional<std::pair<std::string, DType>> parse_descr(std::string_view d) {
  if (d.size() < 3) return std::nullopt;
  const char order = d[0], kind = d[1];
  const std::string_view digits = d.substr(2);
  std::size_t n = 0;
  for (char c : digits) {
    if (!std::isdigit(static_cast<unsigned char>(c)) || n > 1'000'000) return std::nullopt;
    n = n * 10 + static_cast<std::size_t>(c - '0');
  }
  if (order != '<' && order != '|' && order != '=' && order != '>') return std::nullopt;
  std::size_t itemsize = 0;
  if (kind == 'U') {
    itemsize = 4 * n;
  } else if ((kind == 'f' && (n == 4 || n == 8)) ||
             ((kind == 'i' || kind == 'u') && (n == 1 || n == 2 || n == 4 || n == 8)) ||
             (kind == 'b' && n == 1)) {
    itemsize = n;
  } else {
    return std::nullopt;
  }
  if (itemsize == 0) return std::nullopt;
  if (order == '>' && (itemsize > 1 || kind == 'U')) return std::nullopt;  // big-endian
  const char canonical = itemsize == 1 ? '|' : '<';
  return std::pair{std::string(1, canonical) + kind + std::string(digits), DType{kind, itemsize}};
}

DType dtype_or_throw(const std::string& descr, const std::string& what) {
  const auto parsed = parse_descr(descr);
  if (!parsed || parsed->first != descr) {
    throw std::invalid_argument(what + ": unsupported numpy dtype '" + descr + "'");
  }
  return parsed->second;
}

std::int64_t checked_numel(const std::vector<std::int64_t>& shape, const std::string& what) {
  std::int64_t n = 1;
  for (std::int64_t d : shape) {
    if (d < 0) throw std::invalid_argument(what + ": negative dimension in the shape");
    if (d != 0 && n > std::numeric_limits<std::int64_t>::max() / d) {
      throw std::invalid_argument(what + ": shape too large");
    }
    n *= d;
  }
  return n;
}

std::string shape_repr(const std::vector<std::int64_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + (shape.size() == 1 ? ",)" : ")");
}

template <class T>
NpyArray from_values(std::span<const T> v, std::vector<std::int64_t> shape, const char* what) {
  const std::int64_t n = checked_numel(shape, what);
  if (static_cast<std::uint64_t>(n) != v.size()) {
    throw std::invalid_argument(std::string(what) + ": " + std::to_string(v.size()) +
                                " values for shape " + shape_repr(shape));
  }
  NpyArray a;
  a.descr = std::string(npy_descr<T>());
  a.shape = std::move(shape);
  a.data.resize(v.size_bytes());
  if (!v.empty()) std::memcpy(a.data.data(), v.data(), v.size_bytes());
  return a;
}

// --- the header dict: a Python literal with string, bool and tuple-of-int values --------------

class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& what) : s_(text), what_(what) {}

  NpyArray parse() {
    NpyArray a;
    bool has_descr = false, has_order = false, has_shape = false;
    expect('{');
    while (!peek('}')) {
      const std::string key = string_literal();
      expect(':');
      if (key == "descr") {
        a.descr = string_literal();
        has_descr = true;
      } else if (key == "fortran_order") {
        a.fortran_order = boolean();
        has_order = true;
      } else if (key == "shape") {
        a.shape = tuple();
        has_shape = true;
      } else {
        fail("unexpected key '" + key + "'");
      }
      if (!peek('}')) expect(',');
    }
    expect('}');
    if (!has_descr || !has_order || !has_shape) {
      fail("the header lacks one of 'descr', 'fortran_order', 'shape'");
    }
    return a;
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw std::runtime_error("cannot read " + what_ + ": malformed .npy header (" + why + ")");
  }
  void skip_space() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  bool peek(char c) {
    skip_space();
    return pos_ < s_.size() && s_[pos_] == c;
  }
  void expect(char c) {
    if (!peek(c)) fail(std::string("expected '") + c + "'");
    ++pos_;
  }
  std::string string_literal() {
    skip_space();
    if (pos_ >= s_.size() || (s_[pos_] != '\'' && s_[pos_] != '"')) fail("expected a string");
    const char quote = s_[pos_++];
    const std::size_t end = s_.find(quote, pos_);
    if (end == std::string_view::npos) fail("unterminated string");
    std::string out(s_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return out;
  }
  bool boolean() {
    skip_space();
    for (auto [word, value] : {std::pair{"True", true}, std::pair{"False", false}}) {
      if (s_.substr(pos_, std::strlen(word)) == word) {
        pos_ += std::strlen(word);
        return value;
      }
    }
    fail("expected True or False");
  }
  std::vector<std::int64_t> tuple() {
    std::vector<std::int64_t> dims;
    expect('(');
    while (!peek(')')) {
      if (pos_ >= s_.size() || !std::isdigit(static_cast<unsigned char>(s_[pos_]))) {
        fail("expected a dimension");
      }
      std::int64_t d = 0;
      while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) {
        if (d > (std::numeric_limits<std::int64_t>::max() - 9) / 10) fail("dimension too large");
        d = d * 10 + (s_[pos_++] - '0');
      }
      if (pos_ < s_.size() && s_[pos_] == 'L') ++pos_;  // Python 2 long
      dims.push_back(d);
      if (!peek(')')) expect(',');
    }
    expect(')');
    return dims;
  }

  std::string_view s_;
  const std::string& what_;
  std::size_t pos_ = 0;
};

// --- UTF-8 <-> code points ---------------------------------------------------------------------

std::vector<char32_t> utf8_to_code_points(std::string_view s) {
  std::vector<char32_t> out;
  for (std::size_t i = 0; i < s.size();) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    const int len = b0 < 0x80           ? 1
                    : (b0 >> 5) == 0x6  ? 2
                    : (b0 >> 4) == 0xE  ? 3
                    : (b0 >> 3) == 0x1E ? 4
                                        : 0;
    if (len == 0 || i + static_cast<std::size_t>(len) > s.size()) {
      throw std::invalid_argument("invalid UTF-8 in a string for a .npy array");
    }
    char32_t cp = len == 1 ? b0 : b0 & (0x7F >> len);
    for (int k = 1; k < len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + static_cast<std::size_t>(k)]);
      if ((b & 0xC0) != 0x80)
        throw std::invalid_argument("invalid UTF-8 in a string for a .npy array");
      cp = (cp << 6) | (b & 0x3F);
    }
    const char32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      throw std::invalid_argument("invalid UTF-8 in a string for a .npy array");
    }
    out.push_back(cp);
    i += static_cast<std::size_t>(len);
  }
  return out;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

template <class T>
T load_le(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// --- libzip ------------------------------------------------------------------------------------

struct ZipDiscard {
  void operator()(zip_t* z) const { zip_discard(z); }
};
struct ZipFileClose {
  void operator()(zip_file_t* f) const { zip_fclose(f); }
};
using ZipPtr = std::unique_ptr<zip_t, ZipDiscard>;
using ZipFilePtr = std::unique_ptr<zip_file_t, ZipFileClose>;

std::string zip_open_error(int code) {
  zip_error_t error;
  zip_error_init_with_code(&error, code);
  std::string message = zip_error_strerror(&error);
  zip_error_fini(&error);
  return message;
}

// The end-of-central-directory record of an archive without members, which zip_close does not
// write (it removes an empty archive instead).
constexpr std::array<char, 22> kEmptyZip = {'P', 'K', 5, 6};

}  // namespace

// --- NpyArray ------------------------------------------------------------------------------------

std::int64_t NpyArray::numel() const {
  return checked_numel(shape, "NpyArray");
}

void NpyArray::check_descr(std::string_view want) const {
  if (descr != want) {
    throw std::invalid_argument("numpy array of dtype '" + descr + "' read as '" +
                                std::string(want) + "'");
  }
}

std::int64_t NpyArray::as_int() const {
  const auto parsed = parse_descr(descr);
  if (!parsed || parsed->second.kind == 'f' || parsed->second.kind == 'U') {
    throw std::invalid_argument("numpy array of dtype '" + descr + "' is not an integer");
  }
  if (numel() != 1) {
    throw std::invalid_argument("numpy array of shape " + shape_repr(shape) +
                                " is not a single integer");
  }
  const std::byte* p = data.data();
  if (data.size() != parsed->second.itemsize) {
    throw std::invalid_argument("numpy array of dtype '" + descr + "' has the wrong data size");
  }
  const bool is_signed = parsed->second.kind == 'i';
  switch (parsed->second.itemsize) {
    case 1:
      return is_signed ? load_le<std::int8_t>(p) : load_le<std::uint8_t>(p);
    case 2:
      return is_signed ? load_le<std::int16_t>(p) : load_le<std::uint16_t>(p);
    case 4:
      return is_signed ? std::int64_t{load_le<std::int32_t>(p)} : load_le<std::uint32_t>(p);
    default: {
      if (is_signed) return load_le<std::int64_t>(p);
      const auto u = load_le<std::uint64_t>(p);
      if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        throw std::invalid_argument("uint64 value " + std::to_string(u) + " exceeds int64");
      }
      return static_cast<std::int64_t>(u);
    }
  }
}

std::string NpyArray::as_string() const {
  const auto parsed = parse_descr(descr);
  if (!parsed || parsed->second.kind != 'U' || !shape.empty()) {
    throw std::invalid_argument("numpy array of dtype '" + descr + "' and shape " +
                                shape_repr(shape) + " is not a 0-d unicode string");
  }
  if (data.size() != parsed->second.itemsize) {
    throw std::invalid_argument("numpy array of dtype '" + descr + "' has the wrong data size");
  }
  std::size_t n = data.size() / 4;
  // numpy pads shorter strings with NUL code points and drops them when reading.
  while (n > 0 && load_le<char32_t>(data.data() + 4 * (n - 1)) == 0) --n;
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    const char32_t cp = load_le<char32_t>(data.data() + 4 * i);
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      throw std::invalid_argument("numpy unicode string holds an invalid code point");
    }
    append_utf8(out, cp);
  }
  return out;
}

NpyArray NpyArray::from_f32(std::span<const float> v, std::vector<std::int64_t> shape) {
  return from_values(v, std::move(shape), "NpyArray::from_f32");
}

NpyArray NpyArray::from_u8(std::span<const std::uint8_t> v, std::vector<std::int64_t> shape) {
  return from_values(v, std::move(shape), "NpyArray::from_u8");
}

NpyArray NpyArray::scalar_i64(std::int64_t v) {
  return from_values(std::span<const std::int64_t>(&v, 1), {}, "NpyArray::scalar_i64");
}

NpyArray NpyArray::scalar_string(std::string_view utf8) {
  const std::vector<char32_t> cps = utf8_to_code_points(utf8);
  NpyArray a;
  // np.array('') is '<U1': numpy never makes a zero-width string dtype.
  const std::size_t n = std::max<std::size_t>(cps.size(), 1);
  a.descr = "<U" + std::to_string(n);
  a.data.assign(4 * n, std::byte{0});
  if (!cps.empty()) std::memcpy(a.data.data(), cps.data(), 4 * cps.size());
  return a;
}

// --- .npy ----------------------------------------------------------------------------------------

std::string encode_npy(const NpyArray& a) {
  const DType dtype = dtype_or_throw(a.descr, "encode_npy");
  if (a.fortran_order) {
    throw std::invalid_argument("encode_npy: data is C order; fortran_order must be false");
  }
  const std::int64_t n = checked_numel(a.shape, "encode_npy");
  if (static_cast<std::uint64_t>(n) * dtype.itemsize != a.data.size()) {
    throw std::invalid_argument("encode_npy: " + std::to_string(a.data.size()) +
                                " data bytes for dtype '" + a.descr + "' and shape " +
                                shape_repr(a.shape));
  }
  std::string header = "{'descr': '" + a.descr +
                       "', 'fortran_order': False, 'shape': " + shape_repr(a.shape) + ", }";
  if (!a.shape.empty()) {
    const std::size_t digits = std::to_string(a.shape[0]).size();
    if (digits < kGrowthAxisMaxDigits) header.append(kGrowthAxisMaxDigits - digits, ' ');
  }
  // Version 1.0 has a 2-byte header length; numpy moves to 2.0 (4 bytes) only when it overflows.
  std::size_t len_bytes = 2;
  std::size_t pad = kAlign - (kMagic.size() + 2 + len_bytes + header.size() + 1) % kAlign;
  if (header.size() + 1 + pad > 0xFFFF) {
    len_bytes = 4;
    pad = kAlign - (kMagic.size() + 2 + len_bytes + header.size() + 1) % kAlign;
  }
  const std::size_t header_len = header.size() + pad + 1;
  std::string out(kMagic);
  out += static_cast<char>(len_bytes == 2 ? 1 : 2);
  out += '\0';
  for (std::size_t i = 0; i < len_bytes; ++i)
    out += static_cast<char>((header_len >> (8 * i)) & 0xFF);
  out += header;
  out.append(pad, ' ');
  out += '\n';
  out.append(reinterpret_cast<const char*>(a.data.data()), a.data.size());
  return out;
}

NpyArray decode_npy(std::string_view bytes, const std::string& what) {
  const auto fail = [&](const std::string& why) -> std::runtime_error {
    return std::runtime_error("cannot read " + what + ": " + why);
  };
  if (bytes.empty()) throw fail("the file is empty");
  if (bytes.size() < kMagic.size() + 2 || bytes.substr(0, kMagic.size()) != kMagic) {
    throw fail("not a .npy file (no \\x93NUMPY magic)");
  }
  const int major = static_cast<unsigned char>(bytes[6]);
  if (major < 1 || major > 3)
    throw fail("unsupported .npy format version " + std::to_string(major));
  const std::size_t len_bytes = major == 1 ? 2 : 4;
  const std::size_t prefix = kMagic.size() + 2 + len_bytes;
  if (bytes.size() < prefix) throw fail("truncated .npy header");
  std::size_t header_len = 0;
  for (std::size_t i = 0; i < len_bytes; ++i) {
    header_len |= std::size_t{static_cast<unsigned char>(bytes[kMagic.size() + 2 + i])} << (8 * i);
  }
  if (bytes.size() < prefix + header_len) throw fail("truncated .npy header");
  NpyArray a = HeaderParser(bytes.substr(prefix, header_len), what).parse();
  const auto parsed = parse_descr(a.descr);
  if (!parsed) throw fail("unsupported numpy dtype '" + a.descr + "'");
  a.descr = parsed->first;
  if (a.fortran_order) {
    throw fail("Fortran-order arrays are not supported (save with np.ascontiguousarray)");
  }
  std::int64_t n = 0;
  try {
    n = checked_numel(a.shape, what);
  } catch (const std::invalid_argument& e) {
    throw fail(e.what());
  }
  const std::string_view payload = bytes.substr(prefix + header_len);
  if (static_cast<std::uint64_t>(n) > payload.size() / parsed->second.itemsize ||
      static_cast<std::uint64_t>(n) * parsed->second.itemsize != payload.size()) {
    throw fail("holds " + std::to_string(payload.size()) + " data bytes, shape " +
               shape_repr(a.shape) + " of '" + a.descr + "' needs " +
               std::to_string(static_cast<std::uint64_t>(n) * parsed->second.itemsize) +
               " (truncated or corrupt)");
  }
  a.data.resize(payload.size());
  if (!payload.empty()) std::memcpy(a.data.data(), payload.data(), payload.size());
  return a;
}

NpyArray read_npy(const std::filesystem::path& path) {
  return decode_npy(read_file(path), path.string());
}

void write_npy(const std::filesystem::path& path, const NpyArray& a) {
  std::string bytes;
  try {
    bytes = encode_npy(a);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument("cannot write " + path.string() + ": " + e.what());
  }
  write_file_atomic(path, bytes);
}

// --- .npz ----------------------------------------------------------------------------------------

NpzArchive read_npz(const std::filesystem::path& path) {
  const std::string name = path.string();
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) throw std::runtime_error("cannot read " + name + ": " + ec.message());
  if (size == 0) throw std::runtime_error("cannot read " + name + ": the file is empty");
  int code = 0;
  ZipPtr zip(zip_open(name.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &code));
  if (!zip) {
    throw std::runtime_error("cannot read " + name +
                             ": not a valid .npz (zip) archive: " + zip_open_error(code));
  }
  NpzArchive out;
  const zip_int64_t count = zip_get_num_entries(zip.get(), 0);
  for (zip_int64_t i = 0; i < count; ++i) {
    const auto index = static_cast<zip_uint64_t>(i);
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(zip.get(), index, 0, &st) != 0 || (st.valid & ZIP_STAT_NAME) == 0 ||
        (st.valid & ZIP_STAT_SIZE) == 0) {
      throw std::runtime_error("cannot read " + name + ": member " + std::to_string(i) + ": " +
                               zip_strerror(zip.get()));
    }
    const std::string member = st.name;
    const std::string where = name + ":" + member;
    if (member.size() <= 4 || !member.ends_with(".npy")) {
      throw std::runtime_error("cannot read " + where + ": an .npz member must be named <key>.npy");
    }
    ZipFilePtr file(zip_fopen_index(zip.get(), index, 0));
    if (!file) throw std::runtime_error("cannot read " + where + ": " + zip_strerror(zip.get()));
    // The stated size is the archive's claim: refuse it above the limit, and grow the buffer as
    // data arrives rather than trusting it, so a few bytes claiming gigabytes allocate nothing.
    if (st.size > kMaxNpzMemberBytes) {
      throw std::runtime_error("cannot read " + where + ": member of " + std::to_string(st.size) +
                               " bytes exceeds the limit of " + std::to_string(kMaxNpzMemberBytes) +
                               " bytes");
    }
    std::string bytes;
    std::vector<char> chunk(std::size_t{1} << 16);
    while (true) {
      // Reading on to end of file lets libzip check the CRC; reading past the stated size
      // catches a member longer than it claims.
      const zip_int64_t r = zip_fread(file.get(), chunk.data(), chunk.size());
      if (r < 0) {
        throw std::runtime_error("cannot read " + where + ": " +
                                 zip_error_strerror(zip_file_get_error(file.get())));
      }
      if (r == 0) break;
      bytes.append(chunk.data(), static_cast<std::size_t>(r));
      if (bytes.size() > st.size) {
        throw std::runtime_error("cannot read " + where + ": member longer than its stated size");
      }
    }
    if (bytes.size() != st.size) {
      throw std::runtime_error("cannot read " + where + ": member truncated (" +
                               std::to_string(bytes.size()) + " of " + std::to_string(st.size) +
                               " bytes)");
    }
    const std::string key = member.substr(0, member.size() - 4);
    if (out.contains(key)) throw std::runtime_error("cannot read " + where + ": duplicate member");
    out.emplace(key, decode_npy(bytes, where));
  }
  return out;
}

void write_npz(const std::filesystem::path& path, const NpzArchive& arrays, bool compressed) {
  const std::string name = path.string();
  std::vector<std::string> members;  // libzip reads these buffers only in zip_close
  members.reserve(arrays.size());
  for (const auto& [key, array] : arrays) {
    if (key.empty()) throw std::invalid_argument("cannot write " + name + ": empty key");
    try {
      members.push_back(encode_npy(array));
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument("cannot write " + name + ": key '" + key + "': " + e.what());
    }
  }
  if (arrays.empty()) {
    write_file_atomic(path, std::string_view(kEmptyZip.data(), kEmptyZip.size()));
    return;
  }
  AtomicFile file(path);
  int code = 0;
  ZipPtr zip(zip_open(file.temp_path().c_str(), ZIP_CREATE | ZIP_TRUNCATE, &code));
  if (!zip) throw std::runtime_error("cannot write " + name + ": " + zip_open_error(code));
  // A fixed DOS time stamp (1980-01-01 00:00, the earliest one) keeps the output reproducible.
  std::tm epoch{};
  epoch.tm_year = 80;
  epoch.tm_mday = 1;
  epoch.tm_isdst = -1;
  const std::time_t mtime = std::mktime(&epoch);
  std::size_t m = 0;
  for (const auto& [key, array] : arrays) {
    const std::string& bytes = members[m++];
    zip_source_t* source = zip_source_buffer(zip.get(), bytes.data(), bytes.size(), 0);
    if (source == nullptr) {
      throw std::runtime_error("cannot write " + name + ": " + zip_strerror(zip.get()));
    }
    const zip_int64_t index =
        zip_file_add(zip.get(), (key + ".npy").c_str(), source, ZIP_FL_ENC_UTF_8);
    if (index < 0) {
      zip_source_free(source);
      throw std::runtime_error("cannot write " + name + ": key '" + key +
                               "': " + zip_strerror(zip.get()));
    }
    const auto idx = static_cast<zip_uint64_t>(index);
    if (zip_set_file_compression(zip.get(), idx, compressed ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0) !=
            0 ||
        zip_file_set_mtime(zip.get(), idx, mtime, 0) != 0) {
      throw std::runtime_error("cannot write " + name + ": " + zip_strerror(zip.get()));
    }
  }
  if (zip_close(zip.get()) != 0) {
    throw std::runtime_error("cannot write " + name + ": " + zip_strerror(zip.get()));
  }
  static_cast<void>(zip.release());  // zip_close freed it
  file.commit();
}

}  // namespace glia::io
