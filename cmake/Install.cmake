include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS bpfvm bpfvm_api bpfvm_jit bpfvm_verifier bpfvm_vm bpfvm_isa bpfvm_fmt
        EXPORT bpfvmTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/bpfvm)
foreach(dir isa vm verifier jit api)
  install(DIRECTORY ${dir}/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/bpfvm/${dir}
          FILES_MATCHING PATTERN "*.hpp" PATTERN "*.h" PATTERN "*.def")
endforeach()
install(EXPORT bpfvmTargets NAMESPACE bpfvm:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/bpfvm)
configure_package_config_file(cmake/bpfvmConfig.cmake.in "${CMAKE_BINARY_DIR}/bpfvmConfig.cmake"
                              INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/bpfvm)
write_basic_package_version_file("${CMAKE_BINARY_DIR}/bpfvmConfigVersion.cmake" COMPATIBILITY SameMinorVersion)
install(FILES "${CMAKE_BINARY_DIR}/bpfvmConfig.cmake" "${CMAKE_BINARY_DIR}/bpfvmConfigVersion.cmake"
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/bpfvm)
foreach(tool bpfvm_cli bpfvm_conformance_plugin)
  if(TARGET ${tool})
    install(TARGETS ${tool} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  endif()
endforeach()
