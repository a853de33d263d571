# lamia_libstdcxx_first(): make the shared libstdc++ the first NEEDED library of every binary
# defined after the call in this directory and below. This is the LAMIA_LIBSTDCXX_FIRST option.
#
# pip's LibTorch (2.5 and later) exports the std::filesystem functions it links statically
# (pytorch/pytorch#133437). A program that uses them links them from libtorch, because libtorch
# comes first on the link line. With --as-needed it may not even list libstdc++ among its NEEDED
# libraries, so at run time it calls torch's copies. On a GPU machine with torch 2.11 those crashed
# in fs::remove_all.
#
# The shared library is named by its full path: `-lstdc++` before the objects can find a static
# libstdc++ and pull nothing (session 16, docs/DEVELOPING.md). The path is the compiler's own
# libstdc++.so if it has one, else the system's libstdc++.so.6.
# tests/libstdcxx_first/ reproduces the hazard and checks the fix with LD_DEBUG=bindings.
function(lamia_libstdcxx_first)
  execute_process(COMMAND ${CMAKE_CXX_COMPILER} -print-file-name=libstdc++.so
                  OUTPUT_VARIABLE _lib OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(NOT IS_ABSOLUTE "${_lib}" OR NOT EXISTS "${_lib}")
    unset(_lib)
    find_library(_lamia_system_libstdcxx NAMES libstdc++.so.6
                 PATHS /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu /usr/lib64 /usr/lib NO_DEFAULT_PATH)
    set(_lib "${_lamia_system_libstdcxx}")
  endif()
  if(NOT _lib)
    message(FATAL_ERROR "LAMIA_LIBSTDCXX_FIRST: no shared libstdc++ found (neither ${CMAKE_CXX_COMPILER} "
                        "-print-file-name=libstdc++.so nor libstdc++.so.6 in the system's library folders)")
  endif()
  get_filename_component(_lib "${_lib}" REALPATH)
  message(STATUS "LAMIA_LIBSTDCXX_FIRST: linking ${_lib} first")
  add_link_options("LINKER:--push-state,--no-as-needed" "${_lib}" "LINKER:--pop-state")
endfunction()

# lamia_link_libstdcxx_statically(<target>): the target (a shared module) links libstdc++ statically
# and exports none of its symbols, so that its std:: calls bind inside it even where another library
# in the process's global scope exports the same functions. Undoes lamia_libstdcxx_first() for the
# target (a shared libstdc++ first on the line would leave the archive unused).
function(lamia_link_libstdcxx_statically target)
  get_target_property(_opts ${target} LINK_OPTIONS)
  if(_opts)
    list(FIND _opts "LINKER:--push-state,--no-as-needed" _at)
    if(_at GREATER_EQUAL 0)
      list(REMOVE_AT _opts ${_at})
      list(REMOVE_AT _opts ${_at})  # the library's path
      list(REMOVE_AT _opts ${_at})  # LINKER:--pop-state
      set_target_properties(${target} PROPERTIES LINK_OPTIONS "${_opts}")
    endif()
  endif()
  target_link_options(${target} PRIVATE -static-libstdc++ "LINKER:--exclude-libs,ALL")
endfunction()
