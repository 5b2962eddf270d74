// The fixture of glia-serve's tests: two phantom scans (a Kaggle-like image with a tumour and one
// without) and a small checkpoint (base filters 4, depth 2) that tells them apart, so the API and
// browser tests see both branches of the conditional display in seconds on the cpu. The weights
// are an untrained model's except two layers fitted in closed form to these two images: the last
// layer of the classification head (logit difference +3 on the tumour scan, -3 on the other, so
// p = sigmoid(+-3)) and the bias of the segmentation head (about 3% of the tumour scan's pixels
// above the mask threshold). The fixture says nothing about accuracy on other images. Used by
// tests/apps/serve_test.cpp and, through glia-serve-fixture, serve_browser_test.py.
#pragma once

#include <filesystem>

namespace glia::testing {

struct ServeFixture {
  std::filesystem::path checkpoint, tumour, no_tumour;
};

// Writes model.safetensors, tumour.png and no_tumour.png into `dir` (created).
ServeFixture write_serve_fixture(const std::filesystem::path& dir);

}  // namespace glia::testing
