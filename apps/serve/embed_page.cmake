# Writes OUT, a header holding the file IN as `glia::serve::kPage` (a raw string literal), for
# glia-serve's GET /. Run by apps/serve/CMakeLists.txt whenever page.html changes.
file(READ ${IN} GLIA_PAGE)
string(FIND "${GLIA_PAGE}" ")glia_page\"" GLIA_CLASH)
if(NOT GLIA_CLASH EQUAL -1)
  message(FATAL_ERROR "${IN} contains the raw-string delimiter )glia_page\"")
endif()
file(WRITE ${OUT}.tmp
     "// Generated from apps/serve/page.html by apps/serve/embed_page.cmake; do not edit.\n"
     "#pragma once\n#include <string_view>\nnamespace glia::serve {\n"
     "inline constexpr std::string_view kPage = R\"glia_page(${GLIA_PAGE})glia_page\";\n"
     "}  // namespace glia::serve\n")
file(RENAME ${OUT}.tmp ${OUT})
