# fmt and Catch2 from Debian's packages. A cross build cannot link the host's libfmt and must
# not search the host's /usr/include wholesale, so it sees only the fmt and catch2 header
# folders, through links in the build tree.
set(BPFVM_HEADER_LINKS "${CMAKE_BINARY_DIR}/header-links")

function(bpfvm_link_headers name)
  file(MAKE_DIRECTORY "${BPFVM_HEADER_LINKS}")
  if(NOT EXISTS "${BPFVM_HEADER_LINKS}/${name}")
    if(NOT EXISTS "/usr/include/${name}")
      message(FATAL_ERROR "/usr/include/${name} is missing: install Debian's package for it")
    endif()
    file(CREATE_LINK "/usr/include/${name}" "${BPFVM_HEADER_LINKS}/${name}" SYMBOLIC)
  endif()
endfunction()

add_library(bpfvm_fmt INTERFACE)
if(BPFVM_FMT_HEADER_ONLY OR CMAKE_CROSSCOMPILING)
  bpfvm_link_headers(fmt)
  target_include_directories(bpfvm_fmt SYSTEM INTERFACE "$<BUILD_INTERFACE:${BPFVM_HEADER_LINKS}>")
  target_compile_definitions(bpfvm_fmt INTERFACE FMT_HEADER_ONLY)
else()
  find_package(fmt REQUIRED)
  target_link_libraries(bpfvm_fmt INTERFACE fmt::fmt)
endif()

if(BPFVM_BUILD_TESTS)
  add_library(bpfvm_catch2 INTERFACE)
  if(CMAKE_CROSSCOMPILING)
    bpfvm_link_headers(catch2)
    target_include_directories(bpfvm_catch2 SYSTEM INTERFACE "${BPFVM_HEADER_LINKS}")
  else()
    find_package(Catch2 2 REQUIRED)
    target_link_libraries(bpfvm_catch2 INTERFACE Catch2::Catch2)
  endif()
endif()

find_package(Threads REQUIRED)

# LLVM 19 (host builds only): MC disassemblers for the JIT encoding tests.
set(BPFVM_HAVE_LLVM OFF)
if(BPFVM_WITH_LLVM AND NOT CMAKE_CROSSCOMPILING)
  # No version in the call: LLVM's version file accepts only an exact major.minor.
  find_package(LLVM CONFIG QUIET PATHS /usr/lib/llvm-19/lib/cmake/llvm NO_DEFAULT_PATH)
  if(LLVM_FOUND AND LLVM_VERSION_MAJOR EQUAL 19)
    set(BPFVM_HAVE_LLVM ON)
    message(STATUS "LLVM ${LLVM_PACKAGE_VERSION}: MC disassembler checks enabled")
  else()
    message(STATUS "LLVM 19 not found: MC disassembler checks disabled")
  endif()
endif()
