# lamia is split into components that follow the pipeline. Each component is a
# library built from the sources under src/<name>/ (found by glob, so a new
# source file needs no CMake edit) and exposes its headers under
# include/lamia/<name>/. `lamia::lamia` links them all.
#
# lamia_add_component(<name> DEPENDS <targets...>)
set(LAMIA_COMPONENTS "" CACHE INTERNAL "")

function(lamia_add_component name)
  cmake_parse_arguments(ARG "" "" "DEPENDS;PRECOMPILE" ${ARGN})
  file(GLOB _sources CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/${name}/*.cpp)
  if(NOT _sources)
    return()
  endif()
  set(_target lamia_${name})
  add_library(${_target} STATIC ${_sources})
  add_library(lamia::${name} ALIAS ${_target})
  target_include_directories(${_target} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:include>)
  target_link_libraries(${_target} PUBLIC ${ARG_DEPENDS})
  target_compile_features(${_target} PUBLIC cxx_std_17)
  if(ARG_PRECOMPILE)
    target_precompile_headers(${_target} PRIVATE ${ARG_PRECOMPILE})
  endif()
  set_target_properties(${_target} PROPERTIES EXPORT_NAME ${name})
  set(LAMIA_COMPONENTS ${LAMIA_COMPONENTS} ${name} CACHE INTERNAL "")
endfunction()
