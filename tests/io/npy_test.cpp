// .npy / .npz against numpy 1.24: encode_npy and stored write_npz reproduce numpy's bytes exactly
// (golden files from tests/io/data/make_npy_golden.py, arrays rebuilt here from the same index
// formulas), numpy's stored and deflated archives read back, every dtype round-trips, and bad
// files throw naming the file.
#include "io/npy.h"

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "io/atomic_file.h"
#include "tests/common/temp_dir.h"

namespace glia::io {
namespace {

namespace fs = std::filesystem;
using glia::testing::throws_naming;
using NpyTest = glia::testing::TempDirTest;

const fs::path kData = GLIA_IO_TEST_DATA;

// An array of n elements of T, element i = f(i), with the given descr and shape.
template <class T>
NpyArray make(std::string descr, std::vector<std::int64_t> shape, std::function<T(int)> f) {
  NpyArray a;
  a.descr = std::move(descr);
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  a.shape = std::move(shape);
  a.data.resize(static_cast<std::size_t>(n) * sizeof(T));
  for (int i = 0; i < n; ++i) {
    const T v = f(i);
    std::memcpy(a.data.data() + i * sizeof(T), &v, sizeof(T));
  }
  return a;
}

struct Golden {
  const char* file;
  NpyArray array;
};

// The arrays make_npy_golden.py saves, rebuilt from its formulas.
std::vector<Golden> goldens() {
  std::vector<std::int64_t> aligned = {0};
  aligned.insert(aligned.end(), 12, 1);
  aligned.push_back(100);
  return {
      {"f4_2x3.npy", make<float>("<f4", {2, 3}, [](int i) { return float(i * 0.5 - 1.25); })},
      {"f8_5.npy", make<double>("<f8", {5}, [](int i) { return i / 3.0; })},
      {"u1_3x4.npy", make<std::uint8_t>("|u1", {3, 4}, [](int i) { return (i * 37) % 256; })},
      {"i1_7.npy", make<std::int8_t>("|i1", {7}, [](int i) { return (i * 13) % 256 - 128; })},
      {"i2_2x2x2.npy", make<std::int16_t>("<i2", {2, 2, 2}, [](int i) { return i * 1000 - 3000; })},
      {"i4_3.npy", make<std::int32_t>("<i4", {3}, [](int i) { return i * 100000 - 7; })},
      {"i8_4.npy",
       make<std::int64_t>("<i8", {4}, [](int i) { return i * 1'000'000'000'000LL - 5; })},
      {"b1_2x3.npy", make<std::uint8_t>("|b1", {2, 3}, [](int i) { return i % 3 == 0; })},
      {"i8_0d.npy", NpyArray::scalar_i64(7)},
      {"f4_0d.npy", make<float>("<f4", {}, [](int) { return 2.5f; })},
      {"u_0d.npy", NpyArray::scalar_string("h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93")},
      {"f4_empty.npy", make<float>("<f4", {0}, [](int) { return 0.0f; })},
      {"f4_wide.npy", make<float>("<f4", {1234567, 0, 3}, [](int) { return 0.0f; })},
      {"f4_aligned.npy", make<float>("<f4", aligned, [](int) { return 0.0f; })},
  };
}

void expect_same(const NpyArray& got, const NpyArray& want, const std::string& what) {
  EXPECT_EQ(got.descr, want.descr) << what;
  EXPECT_EQ(got.shape, want.shape) << what;
  EXPECT_EQ(got.fortran_order, want.fortran_order) << what;
  EXPECT_TRUE(got.data == want.data) << what;
}

TEST_F(NpyTest, EncodeMatchesNumpyByteForByte) {
  for (const auto& [file, array] : goldens()) {
    const std::string numpy_bytes = read_file(kData / file);
    EXPECT_EQ(encode_npy(array), numpy_bytes) << file;
    expect_same(decode_npy(numpy_bytes, file), array, file);
    write_npy(dir_ / file, array);
    EXPECT_EQ(read_file(dir_ / file), numpy_bytes) << file;
    expect_same(read_npy(dir_ / file), array, file);
  }
}

TEST_F(NpyTest, TypedAccessChecksTheDtype) {
  const NpyArray f = read_npy(kData / "f4_2x3.npy");
  ASSERT_EQ(f.as<float>().size(), 6u);
  EXPECT_EQ(f.as<float>()[5], 1.25f);
  EXPECT_EQ(f.numel(), 6);
  EXPECT_THROW(f.as<double>(), std::invalid_argument);
  EXPECT_THROW(f.as_int(), std::invalid_argument);
  EXPECT_EQ(read_npy(kData / "i2_2x2x2.npy").as<std::int16_t>()[7], 4000);
  EXPECT_EQ(read_npy(kData / "i1_7.npy").as<std::int8_t>()[1], -115);
  EXPECT_EQ(read_npy(kData / "i4_3.npy").as<std::int32_t>()[2], 199993);
  EXPECT_EQ(read_npy(kData / "i8_4.npy").as<std::int64_t>()[3], 2'999'999'999'995LL);
  EXPECT_EQ(read_npy(kData / "u1_3x4.npy").as<std::uint8_t>()[11], 151);
  EXPECT_EQ(read_npy(kData / "f8_5.npy").as<double>()[4], 4 / 3.0);
  // as_int takes any integer or bool width, 0-d or one element.
  EXPECT_EQ(read_npy(kData / "i8_0d.npy").as_int(), 7);
  EXPECT_EQ(make<std::int16_t>("<i2", {1}, [](int) { return -300; }).as_int(), -300);
  EXPECT_EQ(make<std::uint32_t>("<u4", {}, [](int) { return 4000000000u; }).as_int(), 4000000000);
  EXPECT_EQ(make<std::uint8_t>("|b1", {1, 1}, [](int) { return 1; }).as_int(), 1);
  EXPECT_THROW(read_npy(kData / "i8_4.npy").as_int(), std::invalid_argument);
  EXPECT_EQ(read_npy(kData / "u_0d.npy").as_string(), "h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93");
  EXPECT_THROW(read_npy(kData / "i8_0d.npy").as_string(), std::invalid_argument);
  // Shorter strings in a wider dtype are NUL-padded; numpy drops the padding.
  NpyArray padded = NpyArray::scalar_string("ab");
  padded.descr = "<U4";
  padded.data.resize(16, std::byte{0});
  EXPECT_EQ(padded.as_string(), "ab");
  EXPECT_EQ(NpyArray::scalar_string("").descr, "<U1");  // as np.array('')
  EXPECT_EQ(NpyArray::scalar_string("").as_string(), "");
  EXPECT_THROW(NpyArray::scalar_string("\xff"), std::invalid_argument);
}

TEST_F(NpyTest, EveryDtypeRoundTrips) {
  const std::vector<float> f = {1.5f, -2.0f, 3.25f, 0.0f, 1e-30f, -7.0f};
  const std::vector<std::uint8_t> u = {0, 1, 255, 7, 8, 9};
  std::vector<NpyArray> arrays = {NpyArray::from_f32(f, {2, 3}), NpyArray::from_u8(u, {3, 1, 2}),
                                  NpyArray::scalar_i64(-123456789012LL),
                                  NpyArray::scalar_string("BraTS20_Training_001")};
  for (const auto& g : goldens()) arrays.push_back(g.array);
  for (std::size_t i = 0; i < arrays.size(); ++i) {
    const fs::path p = dir_ / ("a" + std::to_string(i) + ".npy");
    write_npy(p, arrays[i]);
    expect_same(read_npy(p), arrays[i], p.string());
  }
  EXPECT_EQ(read_npy(dir_ / "a0.npy").as<float>()[4], 1e-30f);
  EXPECT_EQ(read_npy(dir_ / "a2.npy").as_int(), -123456789012LL);
  EXPECT_THROW(NpyArray::from_f32(f, {4, 2}), std::invalid_argument);
  EXPECT_THROW(NpyArray::from_u8(u, {-1, -6}), std::invalid_argument);
  NpyArray bad = NpyArray::from_f32(f, {6});
  bad.descr = "<f2";
  EXPECT_THROW(encode_npy(bad), std::invalid_argument);
  bad.descr = "<f4";
  bad.data.pop_back();
  EXPECT_THROW(encode_npy(bad), std::invalid_argument);
}

NpzArchive slice_members() {
  NpzArchive a;
  for (const char* key : {"image", "mask", "label", "source", "patient", "slice"}) {
    a.emplace(key, read_npy(kData / (std::string("slice_") + key + ".npy")));
  }
  return a;
}

TEST_F(NpyTest, ReadsNumpyStoredAndDeflatedArchives) {
  const NpzArchive want = slice_members();
  EXPECT_EQ(want.at("source").as_string(), "brats");
  EXPECT_EQ(want.at("label").as_int(), 1);
  ASSERT_EQ(want.at("image").shape, (std::vector<std::int64_t>{1, 4, 5}));
  EXPECT_EQ(want.at("image").as<float>()[19], 19 * 0.25f - 2.0f);
  for (const char* file : {"slice_stored.npz", "slice_compressed.npz"}) {
    const NpzArchive got = read_npz(kData / file);
    ASSERT_EQ(got.size(), want.size()) << file;
    for (const auto& [key, array] : want) {
      ASSERT_TRUE(got.contains(key)) << file << " " << key;
      expect_same(got.at(key), array, std::string(file) + ":" + key);
    }
  }
}

TEST_F(NpyTest, StoredArchiveHoldsNumpysMemberBytes) {
  // A stored member is its .npy file verbatim inside the zip, in numpy's archive and in ours.
  const NpzArchive arrays = slice_members();
  write_npz(dir_ / "ours.npz", arrays, /*compressed=*/false);
  const std::string ours = read_file(dir_ / "ours.npz");
  const std::string numpys = read_file(kData / "slice_stored.npz");
  for (const auto& [key, array] : arrays) {
    const std::string member = read_file(kData / ("slice_" + key + ".npy"));
    EXPECT_NE(numpys.find(member), std::string::npos) << key;
    EXPECT_NE(ours.find(member), std::string::npos) << key;
    EXPECT_NE(ours.find(key + ".npy"), std::string::npos) << key;
  }
  // Deflated members do not appear verbatim, and equal archives give equal files.
  write_npz(dir_ / "packed.npz", arrays, /*compressed=*/true);
  EXPECT_EQ(read_file(dir_ / "packed.npz").find(read_file(kData / "slice_image.npy")),
            std::string::npos);
  write_npz(dir_ / "again.npz", arrays, /*compressed=*/true);
  EXPECT_EQ(read_file(dir_ / "packed.npz"), read_file(dir_ / "again.npz"));
}

TEST_F(NpyTest, ArchivesRoundTrip) {
  NpzArchive arrays;
  for (const auto& g : goldens()) arrays.emplace(fs::path(g.file).stem().string(), g.array);
  for (bool compressed : {true, false}) {
    write_npz(dir_ / "all.npz", arrays, compressed);
    const NpzArchive back = read_npz(dir_ / "all.npz");
    ASSERT_EQ(back.size(), arrays.size());
    for (const auto& [key, array] : arrays) expect_same(back.at(key), array, key);
  }
  write_npz(dir_ / "empty.npz", {});
  EXPECT_TRUE(read_npz(dir_ / "empty.npz").empty());
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 2);
}

TEST_F(NpyTest, BadFilesThrowNamingTheFile) {
  const std::string npy = read_file(kData / "f4_2x3.npy");
  const std::string npz = read_file(kData / "slice_compressed.npz");
  write_file_atomic(dir_ / "empty.npy", "");
  write_file_atomic(dir_ / "cut.npy", npy.substr(0, npy.size() - 3));
  write_file_atomic(dir_ / "cut_header.npy", npy.substr(0, 40));
  write_file_atomic(dir_ / "garbage.npy", std::string(200, 'x'));
  write_file_atomic(dir_ / "long.npy", npy + "xxxx");
  for (const char* name :
       {"missing.npy", "empty.npy", "cut.npy", "cut_header.npy", "garbage.npy", "long.npy"}) {
    EXPECT_TRUE(throws_naming([&] { read_npy(dir_ / name); }, name));
  }
  EXPECT_TRUE(throws_naming([&] { read_npy(kData / "f4_fortran.npy"); }, "f4_fortran.npy"));
  // Every proper prefix of a .npy file is rejected, header or data.
  for (std::size_t n = 0; n < npy.size(); ++n) {
    EXPECT_TRUE(throws_naming([&] { decode_npy(npy.substr(0, n), "prefix.npy"); }, "prefix.npy"))
        << n;
  }
  write_file_atomic(dir_ / "empty.npz", "");
  write_file_atomic(dir_ / "cut.npz", npz.substr(0, npz.size() / 2));
  write_file_atomic(dir_ / "cut_end.npz", npz.substr(0, npz.size() - 10));
  write_file_atomic(dir_ / "plain.npz", npy);
  std::string flipped = npz;
  // A bit error inside the deflated image member: its data follows the local header (30 bytes,
  // the name, then the extra field whose length is at offset 28).
  const std::size_t local = npz.find("image.npy") - 30;
  const auto u16 = [&](std::size_t at) {
    return static_cast<std::size_t>(static_cast<unsigned char>(npz[at])) |
           static_cast<std::size_t>(static_cast<unsigned char>(npz[at + 1])) << 8;
  };
  ASSERT_EQ(npz.substr(local, 4), "PK\x03\x04");
  flipped[local + 30 + u16(local + 26) + u16(local + 28) + 20] ^= 0x55;
  write_file_atomic(dir_ / "flipped.npz", flipped);
  for (const char* name :
       {"missing.npz", "empty.npz", "cut.npz", "cut_end.npz", "plain.npz", "flipped.npz"}) {
    EXPECT_TRUE(throws_naming([&] { read_npz(dir_ / name); }, name));
  }
  // Every proper prefix of a .npz file is rejected.
  for (std::size_t n = 1; n < npz.size(); n += 7) {
    glia::testing::write_bytes(dir_ / "prefix.npz", npz.substr(0, n));
    EXPECT_TRUE(throws_naming([&] { read_npz(dir_ / "prefix.npz"); }, "prefix.npz")) << n;
  }
  EXPECT_TRUE(throws_naming(
      [&] {
        write_npz(dir_ / "no_dir" / "x.npz", {{"a", NpyArray::scalar_i64(1)}});
      },
      "no_dir"));
}

// A member's stated (uncompressed) size is checked before it is read: an archive whose records
// claim 2 GiB for a member of a few hundred bytes is refused naming the member and the limit.
TEST_F(NpyTest, MembersOverTheSizeLimitAreRefused) {
  static_assert(kMaxNpzMemberBytes < 0x80000000u);
  std::string npz = read_file(kData / "slice_compressed.npz");
  const auto set32 = [&](std::size_t at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) npz[at + i] = static_cast<char>(v >> (8 * i));
  };
  // The uncompressed size is at offset 22 of the local header and 24 of the central one; both
  // records precede the name "image.npy".
  const std::size_t local = npz.find("image.npy") - 30;
  const std::size_t central = npz.find("image.npy", local + 40) - 46;
  ASSERT_EQ(npz.substr(local, 4), "PK\x03\x04");
  ASSERT_EQ(npz.substr(central, 4), "PK\x01\x02");
  set32(local + 22, 0x80000000u);
  set32(central + 24, 0x80000000u);
  write_file_atomic(dir_ / "bomb.npz", npz);
  EXPECT_TRUE(throws_naming([&] { read_npz(dir_ / "bomb.npz"); }, "bomb.npz:image.npy"));
  EXPECT_TRUE(throws_naming([&] { read_npz(dir_ / "bomb.npz"); },
                            "exceeds the limit of " + std::to_string(kMaxNpzMemberBytes)));
  // A stated size under the limit but over the real one is a truncated member, found by reading.
  set32(local + 22, 1u << 20);
  set32(central + 24, 1u << 20);
  write_file_atomic(dir_ / "short.npz", npz);
  EXPECT_TRUE(throws_naming([&] { read_npz(dir_ / "short.npz"); }, "short.npz:image.npy"));
}

}  // namespace
}  // namespace glia::io
