// NIfTI-1 through nifti_clib: round trips of .nii and .nii.gz for every dtype written, with
// slope/intercept; the raw .nii bytes checked against the NIfTI-1 layout (header offsets,
// x-fastest voxels after vox_offset); the geometry (qform, sform, units) written into the header
// fields and read back unchanged; 4-D files with one volume accepted and with more rejected;
// every bad file named in the error.
#include "io/nifti.h"

#include <gtest/gtest.h>
#include <nifti1_io.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "io/atomic_file.h"
#include "tests/common/temp_dir.h"
#include "tests/common/tolerance.h"

namespace glia::io {
namespace {

namespace fs = std::filesystem;
using glia::testing::all_close;
using glia::testing::all_equal;
using glia::testing::throws_naming;
using NiftiTest = glia::testing::TempDirTest;

// A 5x4x3 volume (odd sizes) whose voxel i is f(i).
template <class F>
Volume volume(F f) {
  Volume v;
  v.nx = 5;
  v.ny = 4;
  v.nz = 3;
  v.dx = 0.9f;
  v.dy = 1.1f;
  v.dz = 2.5f;
  for (int i = 0; i < 60; ++i) v.data.push_back(static_cast<float>(f(i)));
  return v;
}

template <class T>
T field(const std::string& bytes, std::size_t offset) {
  T v;
  std::memcpy(&v, bytes.data() + offset, sizeof(T));
  return v;
}

int entries(const fs::path& dir) {
  return static_cast<int>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

TEST_F(NiftiTest, RoundTripsEveryDtypeWithSlopeAndIntercept) {
  struct Case {
    NiftiDType dtype;
    float slope, inter;
    Volume v;
  };
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(100.0f, 40.0f);
  // Values on each dtype's grid inter + slope * k, so the integer round trips are exact.
  const std::vector<Case> cases = {
      {NiftiDType::u8, 0.5f, -10.0f, volume([](int i) { return -10 + 0.5 * ((i * 37) % 256); })},
      {NiftiDType::i16, 2.0f, 100.0f,
       volume([](int i) { return 100 + 2 * (i * 541 % 2001 - 1000); })},
      {NiftiDType::i32, 1.0f, 0.0f, volume([](int i) { return i * 1001 - 30000; })},
      {NiftiDType::f32, 1.0f, 0.0f, volume([&](int) { return normal(rng); })},
      {NiftiDType::f64, 1.0f, 0.0f, volume([&](int) { return normal(rng); })},
  };
  for (const char* ext : {".nii", ".nii.gz"}) {
    for (std::size_t c = 0; c < cases.size(); ++c) {
      const fs::path p = dir_ / ("v" + std::to_string(c) + ext);
      write_nifti(p, cases[c].v, cases[c].dtype, cases[c].slope, cases[c].inter);
      const Volume back = read_nifti(p);
      EXPECT_EQ(back.nx, 5);
      EXPECT_EQ(back.ny, 4);
      EXPECT_EQ(back.nz, 3);
      EXPECT_EQ(back.dx, 0.9f);
      EXPECT_EQ(back.dy, 1.1f);
      EXPECT_EQ(back.dz, 2.5f);
      EXPECT_TRUE(all_equal(back.data, cases[c].v.data)) << p;
    }
  }
  // A float file with a slope stores (v - inter) / slope, so one rounding each way.
  const Volume v = volume([](int i) { return 0.37 * i - 4.0; });
  write_nifti(dir_ / "scaled.nii.gz", v, NiftiDType::f32, 0.3f, 7.0f);
  EXPECT_TRUE(all_close(read_nifti(dir_ / "scaled.nii.gz").data, v.data));
  EXPECT_EQ(entries(dir_), 11);  // no temporary files left
}

TEST_F(NiftiTest, NiiBytesFollowTheNifti1Layout) {
  const Volume v = volume([](int i) { return i + 1; });
  write_nifti(dir_ / "raw.nii", v, NiftiDType::u8, 0.5f, -2.0f);
  const std::string bytes = read_file(dir_ / "raw.nii");
  // NIfTI-1: sizeof_hdr 348 at 0, dim[8] at 40, datatype at 70, pixdim at 76, vox_offset at 108,
  // scl_slope at 112, scl_inter at 116, magic "n+1" at 344; voxels x fastest from vox_offset.
  ASSERT_GE(bytes.size(), 352u);
  EXPECT_EQ(field<std::int32_t>(bytes, 0), 348);
  EXPECT_EQ(field<std::int16_t>(bytes, 40), 3);
  EXPECT_EQ(field<std::int16_t>(bytes, 42), 5);
  EXPECT_EQ(field<std::int16_t>(bytes, 44), 4);
  EXPECT_EQ(field<std::int16_t>(bytes, 46), 3);
  EXPECT_EQ(field<std::int16_t>(bytes, 70), 2);  // DT_UINT8
  EXPECT_EQ(field<float>(bytes, 80), 0.9f);
  EXPECT_EQ(field<float>(bytes, 112), 0.5f);
  EXPECT_EQ(field<float>(bytes, 116), -2.0f);
  EXPECT_EQ(bytes.substr(344, 4), std::string("n+1\0", 4));
  const auto offset = static_cast<std::size_t>(field<float>(bytes, 108));
  ASSERT_EQ(bytes.size(), offset + 60);
  const Volume back = read_nifti(dir_ / "raw.nii");
  for (int z = 0; z < 3; ++z) {
    for (int y = 0; y < 4; ++y) {
      for (int x = 0; x < 5; ++x) {
        const int i = x + 5 * (y + 4 * z);
        const auto stored = static_cast<unsigned char>(bytes[offset + i]);
        EXPECT_EQ(stored, ((i + 1) + 2.0) / 0.5);
        EXPECT_EQ(back.at(x, y, z), i + 1);
      }
    }
  }
  EXPECT_THROW(back.at(5, 0, 0), std::out_of_range);
  EXPECT_THROW(back.at(0, 0, -1), std::out_of_range);
}

TEST_F(NiftiTest, GeometryIsWrittenToTheHeaderAndReadBack) {
  Volume v = volume([](int i) { return i; });
  // A 30-degree rotation about z with a left-handed grid (qfac -1) and anisotropic voxels.
  const float angle = 0.5235988f, c = std::cos(angle), s = std::sin(angle);
  NiftiGeometry& g = v.geometry;
  g.qform_code = 1;  // NIFTI_XFORM_SCANNER_ANAT
  g.sform_code = 2;  // NIFTI_XFORM_ALIGNED_ANAT
  g.quatern_d = std::sin(angle / 2);
  g.qoffset_x = -90.5f;
  g.qoffset_y = 126.0f;
  g.qoffset_z = -72.25f;
  g.qfac = -1.0f;
  g.srow = {{{c * v.dx, -s * v.dy, 0.0f, -90.5f},
             {s * v.dx, c * v.dy, 0.0f, 126.0f},
             {0.0f, 0.0f, -v.dz, -72.25f}}};
  g.xyz_units = 2;  // mm
  for (const char* name : {"geo.nii", "geo.nii.gz"}) {
    write_nifti(dir_ / name, v);
    const Volume back = read_nifti(dir_ / name);
    EXPECT_EQ(back.geometry, g) << name;
    EXPECT_EQ(back.dz, v.dz) << name;
  }
  // NIfTI-1: pixdim[0] (qfac) at 76, xyzt_units at 123, qform_code and sform_code at 252 and 254,
  // quatern_b..qoffset_z at 256..276, srow_x/y/z at 280, 296, 312.
  const std::string bytes = read_file(dir_ / "geo.nii");
  EXPECT_EQ(field<float>(bytes, 76), -1.0f);
  EXPECT_EQ(bytes[123] & 0x07, 2);
  EXPECT_EQ(field<std::int16_t>(bytes, 252), 1);
  EXPECT_EQ(field<std::int16_t>(bytes, 254), 2);
  EXPECT_EQ(field<float>(bytes, 264), g.quatern_d);
  EXPECT_EQ(field<float>(bytes, 268), -90.5f);
  for (int r = 0; r < 3; ++r) {
    for (int col = 0; col < 4; ++col) {
      EXPECT_EQ(field<float>(bytes, 280 + 16 * r + 4 * col), g.srow[r][col]) << r << "," << col;
    }
  }
  EXPECT_DOUBLE_EQ(v.voxel_volume_mm3(), double{0.9f} * 1.1f * 2.5f);
  v.geometry.xyz_units = 1;  // metres
  EXPECT_DOUBLE_EQ(v.voxel_volume_mm3(), double{0.9f} * 1.1f * 2.5f * 1e9);
}

// Writes a 4-D float file with nt volumes through nifti_clib directly.
void write_4d(const fs::path& path, int nt) {
  const int dims[8] = {4, 3, 2, 2, nt, 1, 1, 1};
  nifti_image* nim = nifti_make_new_nim(dims, DT_FLOAT32, 1);
  ASSERT_NE(nim, nullptr);
  auto* data = static_cast<float*>(nim->data);
  for (std::size_t i = 0; i < nim->nvox; ++i) data[i] = static_cast<float>(i) - 5.0f;
  ASSERT_EQ(nifti_set_filenames(nim, path.c_str(), 0, 1), 0);
  nifti_image_write(nim);
  nifti_image_free(nim);
}

TEST_F(NiftiTest, FourDimensionalFilesNeedExactlyOneVolume) {
  write_4d(dir_ / "one.nii.gz", 1);
  const Volume v = read_nifti(dir_ / "one.nii.gz");
  EXPECT_EQ(v.nx, 3);
  EXPECT_EQ(v.ny, 2);
  EXPECT_EQ(v.nz, 2);
  std::vector<float> ref;
  for (int i = 0; i < 12; ++i) ref.push_back(static_cast<float>(i) - 5.0f);
  EXPECT_TRUE(all_equal(v.data, ref));
  write_4d(dir_ / "two.nii.gz", 2);
  EXPECT_TRUE(throws_naming([&] { read_nifti(dir_ / "two.nii.gz"); }, "two.nii.gz"));
}

TEST_F(NiftiTest, BadFilesThrowNamingThePath) {
  const Volume v = volume([](int i) { return i; });
  write_nifti(dir_ / "ok.nii", v, NiftiDType::f32);
  write_nifti(dir_ / "ok.nii.gz", v, NiftiDType::f32);
  const std::string nii = read_file(dir_ / "ok.nii");
  const std::string gz = read_file(dir_ / "ok.nii.gz");
  write_file_atomic(dir_ / "empty.nii", "");
  write_file_atomic(dir_ / "garbage.nii", std::string(400, 'x'));
  write_file_atomic(dir_ / "cut_header.nii", nii.substr(0, 200));
  write_file_atomic(dir_ / "cut_data.nii", nii.substr(0, nii.size() - 7));
  write_file_atomic(dir_ / "cut.nii.gz", gz.substr(0, gz.size() / 2));
  write_file_atomic(dir_ / "cut_end.nii.gz", gz.substr(0, gz.size() - 12));
  for (const char* name : {"missing.nii", "missing.nii.gz", "empty.nii", "garbage.nii",
                           "cut_header.nii", "cut_data.nii", "cut.nii.gz", "cut_end.nii.gz"}) {
    EXPECT_TRUE(throws_naming([&] { read_nifti(dir_ / name); }, name));
  }
  // Every proper prefix of either file is rejected.
  for (const auto& [name, bytes] : {std::pair{"prefix.nii", nii}, std::pair{"prefix.nii.gz", gz}}) {
    for (std::size_t n = 1; n < bytes.size(); n += 5) {
      glia::testing::write_bytes(dir_ / name, bytes.substr(0, n));
      EXPECT_TRUE(throws_naming([&] { read_nifti(dir_ / name); }, name)) << n;
    }
  }
  // A missing x.nii is an error even when x.nii.gz exists.
  EXPECT_TRUE(throws_naming([&] { read_nifti(dir_ / "ok.nii.gz.nii"); }, "ok.nii.gz.nii"));
  fs::remove(dir_ / "ok.nii");
  EXPECT_TRUE(throws_naming([&] { read_nifti(dir_ / "ok.nii"); }, "ok.nii"));
}

// A header is checked before any voxel is read: a few hundred bytes claiming a huge volume, or a
// datatype glia does not read, are refused by name, with the limit, without allocating it.
TEST_F(NiftiTest, HeadersOverTheLimitsAreRefusedBeforeReading) {
  const Volume v = volume([](int i) { return i; });
  write_nifti(dir_ / "ok.nii", v, NiftiDType::u8);
  const std::string nii = read_file(dir_ / "ok.nii");
  const auto patched = [&](std::size_t offset, std::int16_t value) {
    std::string bytes = nii;
    std::memcpy(bytes.data() + offset, &value, sizeof value);
    return bytes;
  };
  // 32767 x 4 x 32767 voxels: over kMaxNiftiVoxels (2^28) in u8.
  std::string huge = patched(42, 32767);
  std::memcpy(huge.data() + 46, huge.data() + 42, 2);
  write_file_atomic(dir_ / "huge.nii", huge);
  EXPECT_TRUE(throws_naming([&] { read_nifti(dir_ / "huge.nii"); },
                            "exceed the limit of " + std::to_string(kMaxNiftiVoxels) + " voxels"));
  // Complex64 (DT 32) is a NIfTI datatype glia does not read: refused from the header.
  write_file_atomic(dir_ / "complex.nii", patched(70, 32));
  EXPECT_TRUE(
      throws_naming([&] { read_nifti(dir_ / "complex.nii"); }, "unsupported NIfTI datatype 32"));
  // The same file with its original header reads.
  EXPECT_EQ(read_nifti(dir_ / "ok.nii").data.size(), 60u);
}

TEST_F(NiftiTest, WriteRejectsWhatTheFileCannotHold) {
  Volume v = volume([](int i) { return i; });
  const auto rejects = [&](const char* name, NiftiDType dtype, float slope, float inter) {
    return throws_naming<std::invalid_argument>(
        [&] { write_nifti(dir_ / name, v, dtype, slope, inter); }, name);
  };
  EXPECT_TRUE(rejects("a.nii", NiftiDType::u8, 0.1f, 0.0f));   // 59 / 0.1 > 255
  EXPECT_TRUE(rejects("b.nii", NiftiDType::u8, 1.0f, 10.0f));  // 0 - 10 < 0
  EXPECT_TRUE(rejects("c.nii", NiftiDType::f32, 0.0f, 0.0f));
  EXPECT_TRUE(rejects("d.img", NiftiDType::f32, 1.0f, 0.0f));
  v.data.pop_back();
  EXPECT_TRUE(rejects("e.nii", NiftiDType::f32, 1.0f, 0.0f));
  EXPECT_EQ(entries(dir_), 0);
  EXPECT_TRUE(throws_naming(
      [&] { write_nifti(dir_ / "no_dir" / "f.nii.gz", volume([](int i) { return i; })); },
      "f.nii.gz"));
}

}  // namespace
}  // namespace glia::io
