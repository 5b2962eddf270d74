// NIfTI-1 reading and writing through nifti_clib; see nifti.h.
#include "io/nifti.h"

#include <nifti1_io.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>

#include "io/atomic_file.h"

namespace glia::io {
namespace {

struct NiftiFree {
  void operator()(nifti_image* nim) const { nifti_image_free(nim); }
};
using NiftiPtr = std::unique_ptr<nifti_image, NiftiFree>;

// nifti_clib reports problems on stderr at debug level 1 (its default); ours become exceptions.
// The level is a global of the library: set it once, not from every (possibly concurrent) call.
void quiet() {
  static std::once_flag once;
  std::call_once(once, [] { nifti_set_debug_level(0); });
}

template <class T>
void convert(const void* src, std::size_t n, float slope, float inter, std::vector<float>& out) {
  const auto* p = static_cast<const T*>(src);
  out.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    out[i] = static_cast<float>(static_cast<double>(p[i]) * slope + inter);
  }
}

template <class T>
void store(const Volume& v, float slope, float inter, void* dst, const std::string& name) {
  auto* p = static_cast<T*>(dst);
  for (std::size_t i = 0; i < v.data.size(); ++i) {
    double s = (static_cast<double>(v.data[i]) - inter) / slope;
    if constexpr (std::numeric_limits<T>::is_integer) {
      s = std::nearbyint(s);
      if (!(s >= static_cast<double>(std::numeric_limits<T>::lowest()) &&
            s <= static_cast<double>(std::numeric_limits<T>::max()))) {
        throw std::invalid_argument("cannot write " + name + ": voxel " + std::to_string(i) +
                                    " value " + std::to_string(v.data[i]) +
                                    " does not fit the file's integer type after scaling");
      }
    }
    p[i] = static_cast<T>(s);
  }
}

// The bytes a reader gets from `file`, decompressing gzip; nullopt when the gzip stream is
// truncated or corrupt (zlib checks the CRC and length at its end).
std::optional<std::uint64_t> readable_bytes(const std::string& file) {
  if (nifti_is_gzfile(file.c_str()) == 0) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(file, ec);
    if (ec) return std::nullopt;
    return size;
  }
  gzFile gz = gzopen(file.c_str(), "rb");
  if (gz == nullptr) return std::nullopt;
  std::vector<char> buffer(1 << 16);
  std::uint64_t total = 0;
  int got = 0;
  while ((got = gzread(gz, buffer.data(), static_cast<unsigned>(buffer.size()))) > 0) total += got;
  int error = Z_OK;
  gzerror(gz, &error);
  gzclose(gz);
  if (got < 0 || error != Z_OK) return std::nullopt;
  return total;
}

// Checks sizeof_hdr (348) and dim[0] (1..7) before nifti_clib sees the file: its header parser
// prints to stderr whatever the debug level, so obvious non-NIfTI input never reaches it.
bool header_plausible(const std::string& file) {
  gzFile gz = gzopen(file.c_str(), "rb");  // reads uncompressed files as they are
  if (gz == nullptr) return false;
  unsigned char h[348];
  const int got = gzread(gz, h, sizeof(h));
  gzclose(gz);
  if (got != static_cast<int>(sizeof(h))) return false;
  const auto le32 = [&](int at) {
    return std::uint32_t{h[at]} | std::uint32_t{h[at + 1]} << 8 | std::uint32_t{h[at + 2]} << 16 |
           std::uint32_t{h[at + 3]} << 24;
  };
  const auto le16 = [&](int at) { return static_cast<unsigned>(h[at] | h[at + 1] << 8); };
  const bool swapped = le32(0) == 0x5C010000u;  // 348 written big-endian
  if (le32(0) != 348 && !swapped) return false;
  const unsigned ndim = swapped ? (le16(40) >> 8) | ((le16(40) & 0xFFu) << 8) : le16(40);
  return ndim >= 1 && ndim <= 7;
}

bool supported_datatype(int datatype) {
  switch (datatype) {
    case DT_UINT8:
    case DT_INT8:
    case DT_INT16:
    case DT_UINT16:
    case DT_INT32:
    case DT_UINT32:
    case DT_INT64:
    case DT_UINT64:
    case DT_FLOAT32:
    case DT_FLOAT64:
      return true;
    default:
      return false;
  }
}

// Reads and loads `file`; nullptr with `why` set when the header or the data cannot be read.
NiftiPtr load(const std::string& file, std::string& why) {
  quiet();
  NiftiPtr nim(header_plausible(file) ? nifti_image_read(file.c_str(), 0) : nullptr);
  if (!nim) {
    why = "not a readable NIfTI-1 file (bad or truncated header)";
    return nullptr;
  }
  // The datatype and the size, from the header alone, before any voxel is read or allocated.
  if (!supported_datatype(nim->datatype)) {
    why = "unsupported NIfTI datatype " + std::to_string(nim->datatype) + " (" +
          nifti_datatype_string(nim->datatype) +
          "): integers of 8 to 64 bits and float32/64 are read";
    return nullptr;
  }
  if (nim->nvox > static_cast<std::size_t>(kMaxNiftiVoxels)) {
    why = std::to_string(nim->nx) + "x" + std::to_string(nim->ny) + "x" + std::to_string(nim->nz) +
          " voxels exceed the limit of " + std::to_string(kMaxNiftiVoxels) + " voxels";
    return nullptr;
  }
  // nifti_clib fills missing voxels with zeros instead of failing, so check the data is all there.
  const std::string image = nim->iname != nullptr ? nim->iname : file;
  const std::uint64_t needed =
      static_cast<std::uint64_t>(nim->iname_offset) + std::uint64_t{nim->nvox} * nim->nbyper;
  const auto available = readable_bytes(image);
  if (!available) {
    why = "the gzip stream is truncated or corrupt";
    return nullptr;
  }
  if (*available < needed) {
    why = "truncated: " + std::to_string(*available) + " bytes where the header needs " +
          std::to_string(needed);
    return nullptr;
  }
  if (nifti_image_load(nim.get()) != 0 || nim->data == nullptr) {
    why = "the voxel data cannot be read";
    return nullptr;
  }
  return nim;
}

NiftiGeometry geometry_of(const nifti_image& nim) {
  NiftiGeometry g;
  g.qform_code = nim.qform_code;
  g.sform_code = nim.sform_code;
  g.quatern_b = nim.quatern_b;
  g.quatern_c = nim.quatern_c;
  g.quatern_d = nim.quatern_d;
  g.qoffset_x = nim.qoffset_x;
  g.qoffset_y = nim.qoffset_y;
  g.qoffset_z = nim.qoffset_z;
  g.qfac = nim.qfac < 0 ? -1.0f : 1.0f;
  if (nim.sform_code > 0) {
    for (int r = 0; r < 3; ++r) {
      for (int c = 0; c < 4; ++c) g.srow[r][c] = nim.sto_xyz.m[r][c];
    }
  }
  g.xyz_units = nim.xyz_units;
  return g;
}

// nifti_clib writes the qform from the quaternion fields and the sform from sto_xyz.
void set_geometry(nifti_image& nim, const NiftiGeometry& g) {
  nim.qform_code = g.qform_code;
  nim.sform_code = g.sform_code;
  nim.quatern_b = g.quatern_b;
  nim.quatern_c = g.quatern_c;
  nim.quatern_d = g.quatern_d;
  nim.qoffset_x = g.qoffset_x;
  nim.qoffset_y = g.qoffset_y;
  nim.qoffset_z = g.qoffset_z;
  nim.qfac = nim.pixdim[0] = g.qfac < 0 ? -1.0f : 1.0f;
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 4; ++c) nim.sto_xyz.m[r][c] = g.srow[r][c];
  }
  nim.xyz_units = g.xyz_units;
}

}  // namespace

double Volume::voxel_volume_mm3() const {
  const double mm3 = double{dx} * dy * dz;
  switch (geometry.xyz_units) {
    case NIFTI_UNITS_METER:
      return mm3 * 1e9;
    case NIFTI_UNITS_MICRON:
      return mm3 * 1e-9;
    default:
      return mm3;
  }
}

float Volume::at(std::int64_t x, std::int64_t y, std::int64_t z) const {
  if (x < 0 || y < 0 || z < 0 || x >= nx || y >= ny || z >= nz) {
    throw std::out_of_range("voxel (" + std::to_string(x) + ", " + std::to_string(y) + ", " +
                            std::to_string(z) + ") outside a " + std::to_string(nx) + "x" +
                            std::to_string(ny) + "x" + std::to_string(nz) + " volume");
  }
  return data[static_cast<std::size_t>(x + nx * (y + ny * z))];
}

Volume read_nifti(const std::filesystem::path& path) {
  const std::string name = path.string();
  // nifti_clib would try sibling names (x.nii.gz for x.nii): insist on the file asked for.
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw std::runtime_error("cannot read " + name + ": no such file");
  }
  if (std::filesystem::file_size(path, ec) == 0) {
    throw std::runtime_error("cannot read " + name + ": the file is empty");
  }
  std::string why;
  const NiftiPtr nim = load(name, why);
  if (!nim) throw std::runtime_error("cannot read " + name + ": " + why);
  // nifti_clib leaves nt..nw at 0 beyond dim[0]: count the volumes from dim[4..dim[0]].
  std::int64_t extra = 1;
  for (int d = 4; d <= nim->dim[0] && d < 8; ++d) extra *= std::max(nim->dim[d], 1);
  if (extra != 1) {
    throw std::runtime_error("cannot read " + name + ": " + std::to_string(nim->ndim) +
                             "-D file with " + std::to_string(extra) +
                             " volumes; only one 3-D volume is supported");
  }
  Volume v;
  v.nx = nim->nx;
  v.ny = nim->ny;
  v.nz = nim->nz;
  v.dx = nim->dx;
  v.dy = nim->dy;
  v.dz = nim->dz;
  v.geometry = geometry_of(*nim);
  const std::size_t n = static_cast<std::size_t>(v.nx * v.ny * v.nz);
  if (n != nim->nvox) {
    throw std::runtime_error("cannot read " + name + ": inconsistent dimensions");
  }
  const bool scaled = nim->scl_slope != 0.0f && std::isfinite(nim->scl_slope);
  const float slope = scaled ? nim->scl_slope : 1.0f;
  const float inter = scaled && std::isfinite(nim->scl_inter) ? nim->scl_inter : 0.0f;
  switch (nim->datatype) {
    case DT_UINT8:
      convert<std::uint8_t>(nim->data, n, slope, inter, v.data);
      break;
    case DT_INT8:
      convert<std::int8_t>(nim->data, n, slope, inter, v.data);
      break;
    case DT_INT16:
      convert<std::int16_t>(nim->data, n, slope, inter, v.data);
      break;
    case DT_UINT16:
      convert<std::uint16_t>(nim->data, n, slope, inter, v.data);
      break;
    case DT_INT32:
      convert<std::int32_t>(nim->data, n, slope, inter, v.data);
      break;
    case DT_UINT32:
      convert<std::uint32_t>(nim->data, n, slope, inter, v.data);
      break;
    case DT_INT64:
      convert<std::int64_t>(nim->data, n, slope, inter, v.data);
      break;
    case DT_UINT64:
      convert<std::uint64_t>(nim->data, n, slope, inter, v.data);
      break;
    case DT_FLOAT32:
      convert<float>(nim->data, n, slope, inter, v.data);
      break;
    case DT_FLOAT64:
      convert<double>(nim->data, n, slope, inter, v.data);
      break;
    default:
      throw std::runtime_error("cannot read " + name + ": unsupported NIfTI datatype " +
                               std::to_string(nim->datatype) + " (" +
                               nifti_datatype_string(nim->datatype) + ")");
  }
  return v;
}

void write_nifti(const std::filesystem::path& path, const Volume& v, NiftiDType dtype, float slope,
                 float inter) {
  const std::string name = path.string();
  const std::string file_name = path.filename().string();
  if (!file_name.ends_with(".nii") && !file_name.ends_with(".nii.gz")) {
    throw std::invalid_argument("cannot write " + name + ": the name must end in .nii or .nii.gz");
  }
  constexpr std::int64_t kMaxDim = std::numeric_limits<std::int16_t>::max();  // NIfTI-1 dim[]
  if (v.nx < 1 || v.ny < 1 || v.nz < 1 || v.nx > kMaxDim || v.ny > kMaxDim || v.nz > kMaxDim) {
    throw std::invalid_argument("cannot write " + name + ": size " + std::to_string(v.nx) + "x" +
                                std::to_string(v.ny) + "x" + std::to_string(v.nz) +
                                " outside 1..32767");
  }
  if (v.data.size() != static_cast<std::size_t>(v.nx * v.ny * v.nz)) {
    throw std::invalid_argument("cannot write " + name + ": " + std::to_string(v.data.size()) +
                                " voxels for a " + std::to_string(v.nx) + "x" +
                                std::to_string(v.ny) + "x" + std::to_string(v.nz) + " volume");
  }
  if (slope == 0.0f || !std::isfinite(slope) || !std::isfinite(inter)) {
    throw std::invalid_argument("cannot write " + name +
                                ": scl_slope must be finite and non-zero"
                                " and scl_inter finite");
  }
  int datatype = DT_FLOAT32;
  switch (dtype) {
    case NiftiDType::u8:
      datatype = DT_UINT8;
      break;
    case NiftiDType::i16:
      datatype = DT_INT16;
      break;
    case NiftiDType::i32:
      datatype = DT_INT32;
      break;
    case NiftiDType::f32:
      datatype = DT_FLOAT32;
      break;
    case NiftiDType::f64:
      datatype = DT_FLOAT64;
      break;
  }
  quiet();
  const int dims[8] = {
      3, static_cast<int>(v.nx), static_cast<int>(v.ny), static_cast<int>(v.nz), 1, 1, 1, 1};
  NiftiPtr nim(nifti_make_new_nim(dims, datatype, 1));
  if (!nim || nim->data == nullptr) {
    throw std::runtime_error("cannot write " + name + ": cannot allocate the NIfTI image");
  }
  switch (dtype) {
    case NiftiDType::u8:
      store<std::uint8_t>(v, slope, inter, nim->data, name);
      break;
    case NiftiDType::i16:
      store<std::int16_t>(v, slope, inter, nim->data, name);
      break;
    case NiftiDType::i32:
      store<std::int32_t>(v, slope, inter, nim->data, name);
      break;
    case NiftiDType::f32:
      store<float>(v, slope, inter, nim->data, name);
      break;
    case NiftiDType::f64:
      store<double>(v, slope, inter, nim->data, name);
      break;
  }
  nim->dx = nim->pixdim[1] = v.dx;
  nim->dy = nim->pixdim[2] = v.dy;
  nim->dz = nim->pixdim[3] = v.dz;
  nim->scl_slope = slope;
  nim->scl_inter = inter;
  set_geometry(*nim, v.geometry);
  std::error_code ec;
  const auto folder = path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
  if (!std::filesystem::is_directory(folder, ec)) {
    throw std::runtime_error("cannot write " + name + ": the folder does not exist");
  }
  AtomicFile file(path);
  const std::string temp = file.temp_path().string();
  if (nifti_set_filenames(nim.get(), temp.c_str(), 0, 1) != 0) {
    throw std::runtime_error("cannot write " + name + ": nifti_clib rejected the file name");
  }
  nifti_image_write(nim.get());
  std::string why;
  if (!load(temp, why)) throw std::runtime_error("cannot write " + name + ": " + why);
  file.commit();
}

}  // namespace glia::io
