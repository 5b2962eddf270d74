// NIfTI-1 volumes (.nii and .nii.gz) through nifti_clib (libniftiio), for the BraTS FLAIR and
// label volumes and the synthetic phantoms. Layout: voxel (x, y, z) is data[x + nx * (y + ny * z)],
// x fastest, exactly the order of the file. Intensities are the scaled values
// v = stored * scl_slope + scl_inter (slope 0 means no scaling, as the NIfTI standard says).
// Tested in tests/io/nifti_test.cpp.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

namespace glia::io {

struct Volume {
  std::int64_t nx = 0, ny = 0, nz = 0;  // x fastest in `data`, as stored in the file
  float dx = 1, dy = 1, dz = 1;         // voxel size (pixdim[1..3]) as stored
  std::vector<float> data;              // scl_slope / scl_inter applied (slope 0 = identity)
  // The voxel at (x, y, z); std::out_of_range outside the volume.
  float at(std::int64_t x, std::int64_t y, std::int64_t z) const;
};

// .nii and .nii.gz (also an .hdr/.img pair); any integer (8..64 bit, signed or not) or float
// datatype (byte order is nifti_clib's business; only little-endian files are tested). A 4-D file
// with nt == 1 is accepted, more volumes is an error; truncated, corrupt or missing files throw
// std::runtime_error naming the path.
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
