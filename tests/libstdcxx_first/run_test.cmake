# ctest libstdcxx_first: builds tests/libstdcxx_first and checks where each program's
# std::filesystem::remove_all is bound (glibc's LD_DEBUG=bindings). `plain` must bind it in the
# exporting library (the hazard is reproduced, else the check below proves nothing); `first`, linked
# under lamia_libstdcxx_first(), must bind it in libstdc++.
file(REMOVE_RECURSE "${WORK_DIR}")
execute_process(COMMAND ${CMAKE_COMMAND} -S "${LAMIA_SOURCE_DIR}/tests/libstdcxx_first" -B "${WORK_DIR}"
                        "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}" "-DLAMIA_SOURCE_DIR=${LAMIA_SOURCE_DIR}"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "configure failed:\n${out}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build "${WORK_DIR}" RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "build failed:\n${out}")
endif()
set(symbol "_ZNSt10filesystem10remove_allERKNS_7__cxx114pathE")
set(exe_plain "${WORK_DIR}/plain")
set(exe_first "${WORK_DIR}/first/first")
foreach(program plain first)
  set(exe "${exe_${program}}")
  execute_process(COMMAND ${CMAKE_COMMAND} -E env LD_DEBUG=bindings "${exe}" "${WORK_DIR}"
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE debug)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${program} failed (${rc}): ${out}")
  endif()
  string(REGEX MATCH "binding file [^\n]*${program} \\[0\\] to ([^ ]+) \\[0\\]: normal symbol `${symbol}'" line "${debug}")
  if(NOT line)
    message(FATAL_ERROR "${program}: LD_DEBUG=bindings shows no binding of ${symbol}")
  endif()
  set(bound_${program} "${CMAKE_MATCH_1}")
  message(STATUS "${program}: remove_all bound in ${CMAKE_MATCH_1}")
endforeach()
if(NOT bound_plain MATCHES "libexporter")
  message(FATAL_ERROR "the hazard is not reproduced here: plain binds remove_all in ${bound_plain}, not in "
                      "libexporter.so, so the check of `first` would prove nothing")
endif()
if(NOT bound_first MATCHES "libstdc\\+\\+")
  message(FATAL_ERROR "lamia_libstdcxx_first() did not work: first binds remove_all in ${bound_first}")
endif()
