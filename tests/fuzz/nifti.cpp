// Fuzz target: NIfTI-1 volumes as glia-prep reads BraTS scans. The bytes are a .nii file, or a
// .nii.gz one when they start with the gzip magic (nifti_clib picks the decompressor by the
// name); io::read_nifti reads them and, for volumes whose slices are at most 1 megapixel, the
// first and middle axial slices go through data::prepare_axial_slice.
// Run by scripts/fuzz; seeds and regressions replayed by replay_test.cpp.
#include <cstddef>
#include <cstdint>

#include "data/prep/preprocess.h"
#include "io/nifti.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const bool gz = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
  const auto path = glia::fuzz::write_input(data, size, gz ? "input.nii.gz" : "input.nii");
  glia::io::Volume volume;
  if (!glia::fuzz::accept_or_reject([&] { volume = glia::io::read_nifti(path); })) return 0;
  if (volume.nx * volume.ny > (1 << 20)) return 0;
  for (const std::int64_t z : {std::int64_t{0}, volume.nz / 2}) {
    glia::fuzz::accept_or_reject([&] { (void)glia::data::prepare_axial_slice(volume, z); });
  }
  return 0;
}
