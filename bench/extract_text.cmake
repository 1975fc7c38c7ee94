# cmake -DOBJCOPY=... -DREADELF=... -DOBJ=in.o -DBIN=out.bin -P extract_text.cmake
# Writes the .text section of a BPF object as raw instructions (the `raw` convention any eBPF
# runtime loads). Raw bytes carry no relocations, so an object that needs any (calls into other
# sections, .rodata tables, globals) is refused here rather than run wrongly later.
execute_process(COMMAND "${READELF}" -S -W "${OBJ}" OUTPUT_VARIABLE sections RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${READELF} failed on ${OBJ}")
endif()
foreach(bad "\\.rel\\.text" "\\.rodata" " \\.data" " \\.bss")
  if(sections MATCHES "${bad}")
    message(FATAL_ERROR "${OBJ}: has a section matching '${bad}'; benchmark programs must be "
                        "self-contained .text (no globals, no constant tables, no relocations)")
  endif()
endforeach()
execute_process(COMMAND "${OBJCOPY}" -O binary --only-section=.text "${OBJ}" "${BIN}" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${OBJCOPY} failed on ${OBJ}")
endif()
