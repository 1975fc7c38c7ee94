# Compiling BPF C programs with clang-19 (LLVM 19 knows every CPU v4 instruction).
find_program(BPFVM_CLANG NAMES clang-19 PATHS /usr/lib/llvm-19/bin)
find_program(BPFVM_LLVM_OBJDUMP NAMES llvm-objdump-19 PATHS /usr/lib/llvm-19/bin)

# bpfvm_bpf_object(OUT_VAR SOURCE CPU [FLAGS ...]): compiles SOURCE to
# ${CMAKE_BINARY_DIR}/bpf/<name>.<cpu>.o and returns the path in OUT_VAR.
function(bpfvm_bpf_object out source cpu)
  if(NOT BPFVM_CLANG)
    message(FATAL_ERROR "clang-19 is needed to compile BPF programs (apt-get install clang-19)")
  endif()
  get_filename_component(name "${source}" NAME_WE)
  get_filename_component(abs "${source}" ABSOLUTE)
  set(obj "${CMAKE_BINARY_DIR}/bpf/${name}.${cpu}.o")
  add_custom_command(
    OUTPUT "${obj}"
    COMMAND "${CMAKE_COMMAND}" -E make_directory "${CMAKE_BINARY_DIR}/bpf"
    COMMAND "${BPFVM_CLANG}" -O2 -g -target bpf -mcpu=${cpu} -I "${PROJECT_SOURCE_DIR}/examples/include"
            ${ARGN} -MD -MF "${obj}.d" -c "${abs}" -o "${obj}"
    DEPENDS "${abs}"
    DEPFILE "${obj}.d"
    COMMENT "BPF ${name} (${cpu})"
    VERBATIM)
  set(${out} "${obj}" PARENT_SCOPE)
endfunction()
