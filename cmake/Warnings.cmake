# Warnings for the project's own targets: bpfvm_warnings(target).
function(bpfvm_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra)
  if(BPFVM_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
