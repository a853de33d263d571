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

# Unity builds: each torch translation unit pays about 10 s (2-core machine) just to load the
# 570 MB precompiled <torch/torch.h>, more than most of our files cost to compile, so the sources of
# a target are compiled LAMIA_UNITY_BATCH at a time. Files that define helpers with the same name
# in an anonymous namespace would clash: give such helpers distinct names.
option(LAMIA_UNITY_BUILD "Compile the sources of each target in batches (unity build)" ON)
set(LAMIA_UNITY_BATCH 8 CACHE STRING "Sources per unity batch")

# lamia_unity(<target>): batch the target's sources when LAMIA_UNITY_BUILD is on.
function(lamia_unity target)
  if(LAMIA_UNITY_BUILD)
    set_target_properties(${target} PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE ${LAMIA_UNITY_BATCH})
  endif()
endfunction()

# lamia_reuse_torch_pch(<executable>): the shared <torch/torch.h> PCH (src/CMakeLists.txt) in a
# program. The PCH is compiled as a library object (-fPIC); an executable would get -fPIE and GCC
# would silently ignore the PCH ("created and used with different settings of -fpie").
function(lamia_reuse_torch_pch target)
  if(TARGET lamia_torch_pch)
    set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE OFF)
    target_compile_options(${target} PRIVATE -fPIC)
    target_precompile_headers(${target} REUSE_FROM lamia_torch_pch)
  endif()
endfunction()

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
    foreach(c core data text nn palette ids quantize recommend evaluate pipeline)
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
  lamia_unity(${_target})
  set_target_properties(${_target} PROPERTIES EXPORT_NAME ${name})
  set(LAMIA_COMPONENTS ${LAMIA_COMPONENTS} ${name} CACHE INTERNAL "")
endfunction()

# lamia_check_c10d_gloo(<out-var>): ON when C++ data-parallel training on c10d's Gloo process
# group can be built (include/lamia/distributed/): LibTorch ships c10d's ProcessGroupGloo.hpp and
# TCPStore.hpp, gloo's own headers are found (Debian: libgloo-dev; ProcessGroupGloo.hpp includes
# <gloo/...>), and libtorch_cpu exports c10d::ProcessGroupGloo (checked with nm where there is one).
# LAMIA_WITH_C10D: AUTO (build it when found), ON (fail when not found), OFF.
set(LAMIA_WITH_C10D AUTO CACHE STRING "C++ data-parallel training on c10d's Gloo process group (AUTO, ON, OFF)")
set_property(CACHE LAMIA_WITH_C10D PROPERTY STRINGS AUTO ON OFF)
function(lamia_check_c10d_gloo out)
  set(${out} OFF PARENT_SCOPE)
  if(LAMIA_WITH_C10D STREQUAL "OFF")
    return()
  endif()
  set(_missing "")
  find_path(LAMIA_C10D_INCLUDE_DIR torch/csrc/distributed/c10d/ProcessGroupGloo.hpp HINTS ${TORCH_INCLUDE_DIRS})
  find_path(LAMIA_GLOO_INCLUDE_DIR gloo/context.h HINTS ${TORCH_INCLUDE_DIRS})
  find_library(LAMIA_TORCH_CPU_LIBRARY torch_cpu HINTS ${TORCH_INSTALL_PREFIX}/lib)
  if(NOT LAMIA_C10D_INCLUDE_DIR)
    list(APPEND _missing "torch/csrc/distributed/c10d/ProcessGroupGloo.hpp (LibTorch's c10d headers)")
  endif()
  if(NOT LAMIA_GLOO_INCLUDE_DIR)
    list(APPEND _missing "gloo/context.h (gloo's headers; Debian: libgloo-dev)")
  endif()
  if(NOT _missing AND LAMIA_TORCH_CPU_LIBRARY AND CMAKE_NM)
    execute_process(COMMAND ${CMAKE_NM} -D --defined-only ${LAMIA_TORCH_CPU_LIBRARY}
                    OUTPUT_VARIABLE _symbols ERROR_QUIET RESULT_VARIABLE _nm_result)
    if(_nm_result EQUAL 0 AND NOT _symbols MATCHES "c10d16ProcessGroupGlooC[12]")
      list(APPEND _missing "c10d::ProcessGroupGloo's constructor in ${LAMIA_TORCH_CPU_LIBRARY}")
    endif()
  endif()
  if(_missing)
    if(LAMIA_WITH_C10D STREQUAL "ON")
      message(FATAL_ERROR "LAMIA_WITH_C10D=ON but not found: ${_missing}")
    endif()
    message(STATUS "lamia: no C++ data-parallel training (LAMIA_WITH_C10D): not found: ${_missing}")
    return()
  endif()
  message(STATUS "lamia: C++ data-parallel training on c10d's Gloo (LAMIA_WITH_C10D): ${LAMIA_C10D_INCLUDE_DIR}")
  set(${out} ON PARENT_SCOPE)
endfunction()
