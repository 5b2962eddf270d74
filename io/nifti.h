// NIfTI-1 volumes (.nii and .nii.gz) through nifti_clib (libniftiio), for the BraTS FLAIR and
// label volumes and the synthetic phantoms. Layout: voxel (x, y, z) is data[x + nx * (y + ny * z)],
// x fastest, exactly the order of the file. Intensities are the scaled values
// v = stored * scl_slope + scl_inter (slope 0 means no scaling, as the NIfTI standard says).
// The voxel-to-world geometry (qform, sform, spatial units) is read and written as it is, so a
// volume derived from a read one (a mask) overlays it in a viewer.
// Tested in tests/io/nifti_test.cpp.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <vector>

namespace glia::io {

// The header fields that place voxels in the world, as NIfTI-1 stores them: qform as a quaternion
// with offset and qfac (pixdim[0], -1 or 1), sform as the three rows srow_x/y/z, each with its
// NIFTI_XFORM_* code (0: absent). xyz_units is a NIFTI_UNITS_* code: 0 unknown, 1 m, 2 mm, 3 um.
struct NiftiGeometry {
  int qform_code = 0, sform_code = 0;
  float quatern_b = 0, quatern_c = 0, quatern_d = 0;
  float qoffset_x = 0, qoffset_y = 0, qoffset_z = 0;
  float qfac = 1;
  std::array<std::array<float, 4>, 3> srow{};
  int xyz_units = 0;
  bool operator==(const NiftiGeometry&) const = default;
};

struct Volume {
  std::int64_t nx = 0, ny = 0, nz = 0;  // x fastest in `data`, as stored in the file
  float dx = 1, dy = 1, dz = 1;         // voxel size (pixdim[1..3]) as stored
  NiftiGeometry geometry;
  std::vector<float> data;  // scl_slope / scl_inter applied (slope 0 = identity)
  // The voxel at (x, y, z); std::out_of_range outside the volume.
  float at(std::int64_t x, std::int64_t y, std::int64_t z) const;
  // dx * dy * dz in cubic millimetres, converted from the file's units (unknown taken as mm).
  double voxel_volume_mm3() const;
};

// The largest volume read_nifti loads: the header's voxel count and datatype are checked before
// any data is read, so a header claiming 32767^3 voxels is refused at once. The datatypes read
// take at most 8 bytes a voxel, so a volume is at most 2 GiB in the file and 1 GiB as float.
// BraTS volumes are 240 x 240 x 155 (9 M voxels).
inline constexpr std::int64_t kMaxNiftiVoxels = std::int64_t{1} << 28;

// .nii and .nii.gz (also an .hdr/.img pair); any integer (8..64 bit, signed or not) or float
// datatype (byte order is nifti_clib's business; only little-endian files are tested). A 4-D file
// with nt == 1 is accepted, more volumes is an error; truncated, corrupt or missing files, other
// datatypes and volumes over the limits above throw std::runtime_error naming the path.
Volume read_nifti(const std::filesystem::path& path);

enum class NiftiDType { u8, i16, i32, f32, f64 };
// By extension (.nii or .nii.gz); data stored as (v - inter) / slope in dtype, rounded to nearest
// (ties to even) for integer dtypes; a value that does not fit the dtype, a non-finite or zero
// slope, or data whose size is not nx*ny*nz is std::invalid_argument naming the path. Atomic (the
// temporary file keeps the extension, which selects gzip). The written file is read back once to
// check it, since nifti_clib's writer reports failures only on stderr.
void write_nifti(const std::filesystem::path& path, const Volume& v,
                 NiftiDType dtype = NiftiDType::f32, float slope = 1.0f, float inter = 0.0f);

}  // namespace glia::io
