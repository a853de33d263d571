# Installs the built lamia into a scratch prefix, then configures, builds and
# runs tests/consumer against it with find_package(lamia), then the same for the
# C++ example (examples/cpp): its output must hold the user's history and five
# numbered recommendations, and its training progress must show the terminal bar
# (LAMIA_PROGRESS=terminal: the captured stderr is no terminal).
file(REMOVE_RECURSE ${WORK_DIR})
execute_process(COMMAND ${CMAKE_COMMAND} --install ${LAMIA_BINARY_DIR} --prefix ${WORK_DIR}/prefix
                RESULT_VARIABLE rc OUTPUT_QUIET)
if(rc)
  message(FATAL_ERROR "install failed: ${rc}")
endif()
# The parent build's settings (see tests/CMakeLists.txt): empty ones are left out.
string(REPLACE "|" ";" _prefix_path "${WORK_DIR}/prefix|${PARENT_PREFIX_PATH}")
set(_args -DCMAKE_BUILD_TYPE=Release)
if(PARENT_GENERATOR)
  list(APPEND _args -G "${PARENT_GENERATOR}")
endif()
foreach(v MAKE_PROGRAM CXX_COMPILER EXE_LINKER_FLAGS)
  if(PARENT_${v})
    list(APPEND _args "-DCMAKE_${v}=${PARENT_${v}}")
  endif()
endforeach()
foreach(pkg Torch faiss fmt)
  if(PARENT_${pkg}_DIR)
    list(APPEND _args "-D${pkg}_DIR=${PARENT_${pkg}_DIR}")
  endif()
endforeach()
# Configures (the prefix path is a list: one quoted argument keeps it whole) and builds a project.
function(build_project what source binary)
  execute_process(COMMAND ${CMAKE_COMMAND} -S ${source} -B ${binary} "-DCMAKE_PREFIX_PATH=${_prefix_path}" ${_args}
                  RESULT_VARIABLE rc)
  if(rc)
    message(FATAL_ERROR "${what} configure failed: ${rc}")
  endif()
  execute_process(COMMAND ${CMAKE_COMMAND} --build ${binary} -j 2 RESULT_VARIABLE rc)
  if(rc)
    message(FATAL_ERROR "${what} build failed: ${rc}")
  endif()
endfunction()

build_project(consumer ${LAMIA_SOURCE_DIR}/tests/consumer ${WORK_DIR}/build)
execute_process(COMMAND ${WORK_DIR}/build/consumer RESULT_VARIABLE rc OUTPUT_VARIABLE out)
message(STATUS "${out}")
if(rc)
  message(FATAL_ERROR "consumer run failed: ${rc}")
endif()

# The example: a small synthetic catalog tokenized, a tiny recommender, the top-5 for one user.
build_project("examples/cpp" ${LAMIA_SOURCE_DIR}/examples/cpp ${WORK_DIR}/examples)
execute_process(COMMAND ${CMAKE_COMMAND} -E env LAMIA_PROGRESS=terminal COLUMNS=200 OMP_WAIT_POLICY=PASSIVE
                        ${WORK_DIR}/examples/quickstart --threads 2 --out ${WORK_DIR}/quickstart-out
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message(STATUS "quickstart:\n${out}")
if(rc)
  message(FATAL_ERROR "quickstart failed (${rc}): ${err}")
endif()
# One line per recommendation: "  <rank>. <item id> <codes> <score> <text>", ranks 1 to 5 in order.
string(REGEX MATCHALL "\n  [0-9]\\. i[0-9]+ +<[0-9 ]+> +-?[0-9]+\\.[0-9][0-9]  [^\n]+" top "${out}")
list(LENGTH top n_top)
set(ranks "")
foreach(line IN LISTS top)
  string(REGEX REPLACE "^\n  ([0-9])\\..*" "\\1" r "${line}")
  string(APPEND ranks "${r}")
endforeach()
if(NOT out MATCHES "top-5 recommendations \\(held-out next item: i[0-9]+\\):" OR NOT n_top EQUAL 5
   OR NOT ranks STREQUAL "12345")
  message(FATAL_ERROR "quickstart: expected a top-5 header and five recommendation lines ranked 1 to 5, "
                      "found ${n_top} (ranks '${ranks}') in:\n${out}")
endif()
if(NOT out MATCHES "\nuser u[0-9]+, last items of [0-9]+ in the history:\n  i[0-9]+ +<")
  message(FATAL_ERROR "quickstart: no history of the user in:\n${out}")
endif()
if(NOT EXISTS ${WORK_DIR}/quickstart-out/palettes.bin)
  message(FATAL_ERROR "quickstart: no palettes.bin in ${WORK_DIR}/quickstart-out")
endif()
# The training loop's bar (carriage return, step/total, rates, ETA, erase to end of line) between
# its plain progress lines.
string(ASCII 13 cr)
string(ASCII 27 esc)
if(NOT err MATCHES "${cr}recommender [0-9]+/[0-9]+ \\[[#.]+\\] +[0-9]+% \\| [0-9.?]+ steps/s, [0-9,.?M]+ tok/s \\| [0-9]+:[0-9][0-9] elapsed, ETA [-0-9:]+${esc}\\[K"
   OR NOT err MATCHES "recommender step 5 \\(epoch 1, batch 5/[0-9]+\\) \\| loss ")
  message(FATAL_ERROR "quickstart: no progress bar or progress line of the recommender on stderr:\n${err}")
endif()
