# Helpers that give every project target the same flags. Flags go on targets only, never
# into the global CMAKE_CXX_FLAGS strings.

add_library(vigil_build_flags INTERFACE)
target_compile_options(vigil_build_flags INTERFACE
  -Wall -Wextra -Wshadow -Wnon-virtual-dtor -Wpedantic
  # -Wconversion stays off for now: simdjson, spdlog and Hyperscan headers trip it even as
  # system headers through templates instantiated in our code.
  $<$<BOOL:${VIGIL_WERROR}>:-Werror>)
if(VIGIL_VALIDATION)
  target_compile_definitions(vigil_build_flags INTERFACE VIGIL_VALIDATION=1)
endif()
if(VIGIL_SANITIZERS)
  target_compile_options(vigil_build_flags INTERFACE
    -fsanitize=${VIGIL_SANITIZERS} -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  target_link_options(vigil_build_flags INTERFACE -fsanitize=${VIGIL_SANITIZERS})
  target_compile_definitions(vigil_build_flags INTERFACE VIGIL_SANITIZED=1)
  # GCC 12 reports -Wmaybe-uninitialized inside std::function when sanitizers change
  # inlining (seen in tests/dataplane under address,undefined); it is not in our code.
  target_compile_options(vigil_build_flags INTERFACE
    $<$<CXX_COMPILER_ID:GNU>:-Wno-maybe-uninitialized>)
endif()
if(VIGIL_FUZZERS)
  # Coverage counters in every project library, not only in the fuzz target's own file.
  # Without them libFuzzer sees a few dozen edges of the harness and mutates blind.
  target_compile_options(vigil_build_flags INTERFACE
    $<$<CXX_COMPILER_ID:Clang>:-fsanitize=fuzzer-no-link>)
endif()
target_compile_definitions(vigil_build_flags INTERFACE
  VIGIL_VERSION="${PROJECT_VERSION}" VIGIL_SOURCE_DIR="${CMAKE_SOURCE_DIR}")

# vigil_module(NAME DEPS...): one static library per module. Sources are the module's
# *.cc files and internal/*.cc; public headers sit at the module root and are reached as
# "<module>/<header>.h" from the repository root.
function(vigil_module name)
  cmake_parse_arguments(ARG "" "" "PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  file(GLOB _srcs CONFIGURE_DEPENDS
    "${CMAKE_CURRENT_SOURCE_DIR}/*.cc" "${CMAKE_CURRENT_SOURCE_DIR}/internal/*.cc")
  add_library(vigil_${name} STATIC ${_srcs})
  add_library(vigil::${name} ALIAS vigil_${name})
  target_include_directories(vigil_${name} PUBLIC "${CMAKE_SOURCE_DIR}" "${CMAKE_BINARY_DIR}")
  target_link_libraries(vigil_${name}
    PUBLIC ${ARG_PUBLIC_DEPS}
    PRIVATE vigil_build_flags ${ARG_PRIVATE_DEPS})
  # Static libraries end up in executables that may run under sanitizers; propagate the
  # flags so every object in a sanitized binary is instrumented.
  if(VIGIL_SANITIZERS)
    target_link_libraries(vigil_${name} PUBLIC vigil_build_flags)
  endif()
endfunction()

# vigil_executable(NAME SOURCES... LIBS ...)
function(vigil_executable name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE vigil_build_flags ${ARG_LIBS})
  # jemalloc replaces malloc in the daemon; sanitizers need their own allocator.
  if(JEMALLOC_FOUND AND NOT VIGIL_SANITIZERS)
    target_link_libraries(${name} PRIVATE PkgConfig::JEMALLOC)
    target_compile_definitions(${name} PRIVATE VIGIL_WITH_JEMALLOC=1)
  endif()
endfunction()

# vigil_precompile(TARGET HEADERS...): precompile the large third-party and standard
# headers that most of a target's files include. Parsing them is a third to a half of
# each file's compile time (gcc -ftime-report on mgmt/content_service.cc and
# tests/correlate/prefilter_test.cc), and it was paid again for every file.
option(VIGIL_PCH "Precompile the shared third-party headers of the larger targets" ON)
function(vigil_precompile target)
  if(VIGIL_PCH)
    target_precompile_headers(${target} PRIVATE ${ARGN})
  endif()
endfunction()

# Standard and third-party headers that nearly every file of the API, content and test
# targets pulls in, directly or through the project's own headers.
set(VIGIL_PCH_COMMON <algorithm> <atomic> <chrono> <filesystem> <fstream> <functional>
    <map> <memory> <mutex> <optional> <set> <sstream> <string> <string_view> <thread>
    <utility> <vector> <absl/status/status.h> <absl/status/statusor.h>
    <nlohmann/json.hpp> <spdlog/spdlog.h>)
