# install(EXPORT) so that another project can find_package(lamia) and link lamia::lamia.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(_lamia_targets lamia)
foreach(c IN LISTS LAMIA_COMPONENTS)
  list(APPEND _lamia_targets lamia_${c})
endforeach()

install(TARGETS ${_lamia_targets} EXPORT lamiaTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/lamia DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
# `lamia report` finds its plotting script next to the installed tool, in ../share/lamia.
if(TARGET lamia_cli)
  install(FILES ${PROJECT_SOURCE_DIR}/python/pylamia/report.py DESTINATION ${CMAKE_INSTALL_DATADIR}/lamia)
endif()
install(EXPORT lamiaTargets NAMESPACE lamia:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/lamia)

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/lamiaConfig.cmake.in
  ${PROJECT_BINARY_DIR}/lamiaConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/lamia)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/lamiaConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/lamiaConfig.cmake ${PROJECT_BINARY_DIR}/lamiaConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/lamia)
