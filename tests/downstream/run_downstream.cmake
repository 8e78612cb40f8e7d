# Installs the built kprior into a scratch prefix, then configures, builds and runs the
# downstream project against it. Run by CTest (cmake -P). KPRIOR_PREFIX_PATH is the main
# build's CMAKE_PREFIX_PATH (where Torch was found, e.g. a pip LibTorch on the GPU machine).
file(REMOVE_RECURSE ${WORK_DIR})
execute_process(COMMAND ${CMAKE_COMMAND} --install ${KPRIOR_BINARY_DIR} --prefix ${WORK_DIR}/prefix
  RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "cmake --install failed (${rc})")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -S ${DOWNSTREAM_SOURCE_DIR} -B ${WORK_DIR}/build
  -DCMAKE_BUILD_TYPE=Release "-DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix;${KPRIOR_PREFIX_PATH}"
  RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "configuring the downstream project failed (${rc})")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK_DIR}/build RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "building the downstream project failed (${rc})")
endif()
execute_process(COMMAND ${WORK_DIR}/build/downstream RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "the downstream program failed (${rc})")
endif()
