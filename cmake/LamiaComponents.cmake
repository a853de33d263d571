# lamia is split into components that follow the pipeline. Each component is a
# library built from the sources under src/<name>/ (found by glob, so a new
# source file needs no CMake edit) and exposes its headers under
# include/lamia/<name>/. `lamia::lamia` links them all.
#
# lamia_add_component(<name> DEPENDS <targets...> [TORCH_PCH])  (TORCH_PCH: reuse lamia_torch_pch)
set(LAMIA_COMPONENTS "" CACHE INTERNAL "")
# For development: build only these components (and their bindings, tests and
# CLI commands), e.g. -DLAMIA_ONLY="core;data". Empty means all.
set(LAMIA_ONLY "" CACHE STRING "Build only these components (empty: all)")

# lamia_component_enabled(<name> <out-var>)
function(lamia_component_enabled name out)
  if(NOT LAMIA_ONLY OR name IN_LIST LAMIA_ONLY)
    set(${out} ON PARENT_SCOPE)
  else()
    set(${out} OFF PARENT_SCOPE)
  endif()
endfunction()

# lamia_filter_by_component(<list-var>): keeps files named <component>*.cpp or
# cmd_<component>*.cpp only for enabled components; other names are kept.
function(lamia_filter_by_component var)
  set(_kept "")
  foreach(f IN LISTS ${var})
    get_filename_component(_n ${f} NAME)
    set(_keep ON)
    foreach(c core data text nn palette quantize recommend evaluate pipeline)
      if(_n MATCHES "^(cmd_)?${c}[_.]")
        lamia_component_enabled(${c} _keep)
      endif()
    endforeach()
    if(_keep)
      list(APPEND _kept ${f})
    endif()
  endforeach()
  set(${var} ${_kept} PARENT_SCOPE)
endfunction()

function(lamia_add_component name)
  cmake_parse_arguments(ARG "TORCH_PCH" "" "DEPENDS" ${ARGN})
  lamia_component_enabled(${name} _enabled)
  file(GLOB_RECURSE _sources CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/${name}/*.cpp)
  if(NOT _sources OR NOT _enabled)
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
  if(ARG_TORCH_PCH)
    target_precompile_headers(${_target} REUSE_FROM lamia_torch_pch)
  endif()
  set_target_properties(${_target} PROPERTIES EXPORT_NAME ${name})
  set(LAMIA_COMPONENTS ${LAMIA_COMPONENTS} ${name} CACHE INTERNAL "")
endfunction()
