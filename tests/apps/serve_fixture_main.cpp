// glia-serve-fixture DIR: writes the serve tests' fixture (tests/apps/serve_fixture.h) into DIR
// and prints its three paths, one a line; used by serve_browser_test.py.
#include <exception>
#include <iostream>

#include "tests/apps/serve_fixture.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: glia-serve-fixture DIR\n";
    return 1;
  }
  try {
    const glia::testing::ServeFixture f = glia::testing::write_serve_fixture(argv[1]);
    std::cout << f.checkpoint.string() << "\n"
              << f.tumour.string() << "\n"
              << f.no_tumour.string() << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "glia-serve-fixture: " << e.what() << "\n";
    return 1;
  }
}
