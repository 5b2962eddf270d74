// safetensors: bit-exact round trips of every dtype (BF16 and F16 included), the byte layout the
// format prescribes (little-endian length, 8-byte aligned JSON header, contiguous data in offset
// order), files written by hand as PyTorch's tooling does (I64 included) and by a Python script
// (F16, BF16), and errors naming the tensor.
#include "io/safetensors.h"

#include <gtest/gtest.h>

#include <fstream>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "engine/ops.h"
#include "io/atomic_file.h"
#include "tests/common/tolerance.h"
#include "tests/engine/test_util.h"

namespace glia::io {
namespace {

namespace fs = std::filesystem;
using glia::testing::all_equal;
using glia::testing::error_of;
using glia::testing::random_tensor;

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        fs::temp_directory_path() /
        ("glia_safetensors_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
         "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

// A file's header as JSON plus its length field.
std::pair<nlohmann::json, std::uint64_t> header_of(const std::string& bytes) {
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  return {nlohmann::json::parse(bytes.substr(8, n)), n};
}

// A file written the way other tools write it: given header JSON and data bytes.
std::string handmade(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  const std::uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  return out + header + data;
}

TEST_F(SafetensorsTest, RoundTripIsBitExactForEveryDtype) {
  TensorMap tensors;
  tensors["a.f32"] = random_tensor({3, 5}, -2, 2, 1);
  tensors["b.f64"] = random_tensor({2, 2, 3}, -1, 1, 2, DType::f64);
  tensors["c.i32"] = from_vector<std::int32_t>({-7, 0, 2147483647, 5}, {4});
  tensors["d.u8"] = from_vector<std::uint8_t>({0, 255, 17}, {3});
  tensors["e.scalar"] = from_vector<double>({3.25}, {});
  tensors["f.empty"] = zeros({0, 4});
  const Metadata metadata{{"depth", "3"}, {"note", "a \"quoted\" value"}};
  save_safetensors(dir_ / "x.safetensors", tensors, metadata);

  const SafetensorsContent back = load_safetensors(dir_ / "x.safetensors");
  EXPECT_EQ(back.metadata, metadata);
  EXPECT_EQ(read_safetensors_metadata(dir_ / "x.safetensors"), metadata);
  ASSERT_EQ(back.tensors.size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    SCOPED_TRACE(name);
    const Tensor& b = back.tensors.at(name);
    EXPECT_EQ(b.shape(), t.shape());
    ASSERT_EQ(b.dtype(), t.dtype());
    const std::size_t bytes = static_cast<std::size_t>(t.numel()) * dtype_size(t.dtype());
    EXPECT_EQ(std::memcmp(b.raw_data(), t.raw_data(), bytes), 0);
  }
}

TEST_F(SafetensorsTest, LayoutFollowsTheFormat) {
  TensorMap tensors{{"z", ones({2, 3})},
                    {"a", from_vector<std::uint8_t>({1, 2, 3}, {3})},
                    {"m", from_vector<double>({1.5}, {1})}};
  const std::string bytes = encode_safetensors(tensors, {{"k", "v"}});
  auto [header, n] = header_of(bytes);
  EXPECT_EQ((8 + n) % 8, 0u) << "data section must start 8-byte aligned";
  EXPECT_EQ(header["__metadata__"]["k"], "v");
  EXPECT_EQ(header["z"]["dtype"], "F32");
  EXPECT_EQ(header["a"]["dtype"], "U8");
  EXPECT_EQ(header["m"]["dtype"], "F64");
  EXPECT_EQ(header["z"]["shape"], nlohmann::json::array({2, 3}));
  // Contiguous, in order, covering the whole data section.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> spans;
  for (const char* name : {"a", "m", "z"}) {
    spans.emplace_back(header[name]["data_offsets"][0], header[name]["data_offsets"][1]);
  }
  EXPECT_EQ(spans[0].first, 0u);
  for (std::size_t i = 1; i < spans.size(); ++i) EXPECT_EQ(spans[i].first, spans[i - 1].second);
  EXPECT_EQ(spans.back().second, bytes.size() - 8 - n);
  float first = 0;
  std::memcpy(&first, bytes.data() + 8 + n + spans[2].first, 4);
  EXPECT_EQ(first, 1.0f);
}

TEST_F(SafetensorsTest, ReadsHandWrittenFilesWithI64AndWhitespace) {
  std::string data;
  const std::int64_t longs[2] = {-3, 1000000};
  const float f[2] = {0.5f, -2.0f};
  data.append(reinterpret_cast<const char*>(longs), sizeof longs);
  data.append(reinterpret_cast<const char*>(f), sizeof f);
  const std::string header =
      R"({ "n": {"dtype": "I64", "shape": [2], "data_offsets": [0, 16]},)"
      R"( "w": {"dtype": "F32", "shape": [1, 2], "data_offsets": [16, 24]} })";
  const SafetensorsContent c = decode_safetensors(handmade(header, data), "hand");
  ASSERT_EQ(c.tensors.at("n").dtype(), DType::i32);
  EXPECT_TRUE(all_equal(c.tensors.at("n").to_vector<std::int32_t>(), {-3, 1000000}));
  EXPECT_TRUE(all_equal(c.tensors.at("w").to_vector<float>(), {0.5f, -2.0f}));
  EXPECT_TRUE(c.metadata.empty());
}

// data/python_safetensors.safetensors was written once by the Python safetensors package (0.8.0):
//   save_file({"a": np.arange(6, dtype=np.int64).reshape(2, 3), "b": np.ones(2, np.float64),
//              "c": np.zeros(3, np.uint8), "s": np.array(2.5, np.float32)},
//             path, metadata={"depth": "2"})
TEST_F(SafetensorsTest, ReadsAFileWrittenByThePythonPackage) {
  const SafetensorsContent c =
      load_safetensors(fs::path(GLIA_IO_TEST_DATA) / "python_safetensors.safetensors");
  EXPECT_EQ(c.metadata, (Metadata{{"depth", "2"}}));
  ASSERT_EQ(c.tensors.size(), 4u);
  EXPECT_EQ(c.tensors.at("a").shape(), (Shape{2, 3}));
  EXPECT_TRUE(all_equal(c.tensors.at("a").to_vector<std::int32_t>(), {0, 1, 2, 3, 4, 5}));
  EXPECT_TRUE(all_equal(c.tensors.at("b").to_vector<double>(), {1.0, 1.0}));
  EXPECT_TRUE(all_equal(c.tensors.at("c").to_vector<std::uint8_t>(), {0, 0, 0}));
  EXPECT_EQ(c.tensors.at("s").shape(), Shape{});
  EXPECT_EQ(c.tensors.at("s").item<float>(), 2.5f);
}

template <class H>
std::vector<std::uint16_t> half_bits(const Tensor& t) {
  std::vector<std::uint16_t> out;
  for (const H& h : t.to_vector<H>()) out.push_back(h.bits);
  return out;
}

TEST_F(SafetensorsTest, Bf16AndF16TensorsRoundTripBitForBit) {
  const Tensor x = random_tensor({3, 7}, -70000.0, 70000.0, 16);
  const Tensor small = random_tensor({2, 2, 2}, -1e-6, 1e-6, 17);
  const TensorMap written{{"b", x.to(DType::bf16)},
                          {"h", x.to(DType::f16)},
                          {"s", small.to(DType::f16)},
                          {"e", Tensor({0, 3}, DType::bf16, Device::cpu())}};
  save_safetensors(dir_ / "half.safetensors", written);
  const SafetensorsContent c = load_safetensors(dir_ / "half.safetensors");
  for (const auto& [name, t] : written) {
    SCOPED_TRACE(name);
    const Tensor& got = c.tensors.at(name);
    ASSERT_EQ(got.dtype(), t.dtype());
    EXPECT_EQ(got.shape(), t.shape());
    if (t.dtype() == DType::bf16) {
      EXPECT_EQ(half_bits<bf16>(got), half_bits<bf16>(t));
    } else {
      EXPECT_EQ(half_bits<f16>(got), half_bits<f16>(t));
    }
  }
  const std::string bytes = encode_safetensors(written);
  std::uint64_t length = 0;
  std::memcpy(&length, bytes.data(), sizeof length);
  const nlohmann::json header = nlohmann::json::parse(bytes.substr(8, length));
  EXPECT_EQ(header["b"]["dtype"], "BF16");
  EXPECT_EQ(header["h"]["dtype"], "F16");
  EXPECT_EQ(header["h"]["data_offsets"][1].get<int>() - header["h"]["data_offsets"][0].get<int>(),
            2 * 21);
}

// data/half_safetensors.safetensors was written by data/make_half_safetensors.py with Python's
// standard library (no numpy or torch where it was written): a hand-built header, F16 packed by
// struct's own binary16 rounding, BF16 by integer rounding of the float32 bits. Values are
// float(i * 0.3 - 1.7) for i < 6, then 65504, 65520 (overflows f16), float(1e-7) and -0.
TEST_F(SafetensorsTest, ReadsAndRewritesAHandBuiltHalfFile) {
  const fs::path path = fs::path(GLIA_IO_TEST_DATA) / "half_safetensors.safetensors";
  const SafetensorsContent c = load_safetensors(path);
  std::vector<float> values;
  for (int i = 0; i < 6; ++i) values.push_back(static_cast<float>(i * 0.3 - 1.7));
  for (const float v : {65504.0f, 65520.0f, static_cast<float>(1e-7), -0.0f}) values.push_back(v);
  const Tensor full = from_vector(values, {10});
  ASSERT_EQ(c.tensors.size(), 3u);
  EXPECT_TRUE(all_equal(c.tensors.at("full").to_vector<float>(), values));
  ASSERT_EQ(c.tensors.at("half").dtype(), DType::f16);
  ASSERT_EQ(c.tensors.at("brain").dtype(), DType::bf16);
  EXPECT_EQ(c.tensors.at("half").shape(), (Shape{5, 2}));
  EXPECT_EQ(c.tensors.at("brain").shape(), (Shape{2, 5}));
  EXPECT_EQ(half_bits<f16>(c.tensors.at("half")), half_bits<f16>(full.to(DType::f16)));
  EXPECT_EQ(half_bits<bf16>(c.tensors.at("brain")), half_bits<bf16>(full.to(DType::bf16)));
  EXPECT_EQ(half_bits<f16>(c.tensors.at("half"))[7], 0x7c00u);  // 65520 overflows to infinity
  // glia writes the same tensors and metadata to the same bytes.
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(encode_safetensors(c.tensors, c.metadata), bytes);
}

TEST_F(SafetensorsTest, MalformedFilesAreReportedByName) {
  EXPECT_NE(error_of([] { decode_safetensors("abc", "short.st"); }).find("short.st"),
            std::string::npos);
  const std::string data(8, '\0');
  const std::string oob =
      handmade(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", data);
  const std::string msg = error_of([&] { decode_safetensors(oob, "f.st"); });
  EXPECT_NE(msg.find("'w'"), std::string::npos) << msg;
  const std::string wrong_size =
      handmade(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", data);
  EXPECT_NE(error_of([&] { decode_safetensors(wrong_size, "f.st"); }).find("'w'"),
            std::string::npos);
  const std::string bad_dtype =
      handmade(R"({"w":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]}})", data);
  EXPECT_NE(error_of([&] { decode_safetensors(bad_dtype, "f.st"); }).find("F8_E4M3"),
            std::string::npos);
  const std::string big_i64 = handmade(R"({"n":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})",
                                       std::string("\0\0\0\0\1\0\0\0", 8));
  EXPECT_NE(error_of([&] { decode_safetensors(big_i64, "f.st"); }).find("'n'"), std::string::npos);
  EXPECT_NE(error_of([&] { load_safetensors(dir_ / "absent.safetensors"); }).find("absent"),
            std::string::npos);
}

// The memory a file can ask for is bounded before anything is allocated: the header length by
// kMaxSafetensorsHeaderBytes (also when only the metadata is read), each tensor by the data
// section (its offsets must lie inside it, and a shape whose element count could not fit is
// refused before it is multiplied out, so a product that wraps around 2^64 cannot pass).
TEST_F(SafetensorsTest, HeaderLengthAndTensorSizesAreBounded) {
  std::string huge(8, '\0');
  const std::uint64_t n = kMaxSafetensorsHeaderBytes + 1;
  std::memcpy(huge.data(), &n, 8);
  huge += "{}";
  const std::string header_msg = error_of([&] { decode_safetensors(huge, "long.st"); });
  EXPECT_NE(header_msg.find("long.st"), std::string::npos) << header_msg;
  EXPECT_NE(header_msg.find(std::to_string(n)), std::string::npos) << header_msg;
  { std::ofstream(dir_ / "long.safetensors", std::ios::binary) << huge; }
  EXPECT_NE(error_of([&] {
              read_safetensors_metadata(dir_ / "long.safetensors");
            }).find(std::to_string(n)),
            std::string::npos);
  const std::string data(8, '\0');
  // 2^62 F32 elements: 2^64 bytes, which wraps to the 0-byte span [0, 0) in 64-bit arithmetic.
  const std::string wraps =
      handmade(R"({"w":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}})", data);
  const std::string wrap_msg = error_of([&] { decode_safetensors(wraps, "wrap.st"); });
  EXPECT_NE(wrap_msg.find("more elements than the 8-byte data section"), std::string::npos)
      << wrap_msg;
  // Two dims whose product wraps to 0 the same way, and a dim past int64.
  const std::string wraps2 = handmade(
      R"({"w":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", data);
  EXPECT_NE(error_of([&] { decode_safetensors(wraps2, "wrap2.st"); }).find("wrap2.st"),
            std::string::npos);
  const std::string past =
      handmade(R"({"w":{"dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,8]}})", data);
  EXPECT_NE(error_of([&] { decode_safetensors(past, "past.st"); }).find("exceeds"),
            std::string::npos);
  // An empty tensor (a 0 in the shape) takes no bytes, whatever its other dims.
  const std::string empty = handmade(
      R"({"w":{"dtype":"F32","shape":[0,4611686018427387904],"data_offsets":[0,0]}})", data);
  EXPECT_EQ(decode_safetensors(empty, "empty.st").tensors.at("w").numel(), 0);
}

}  // namespace
}  // namespace glia::io
