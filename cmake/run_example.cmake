# Installs bpcheck from the build tree into a private prefix, then configures, builds and tests
# examples/my_layer against it with find_package, as a user's project would.
#   cmake -DBUILD_DIR=… -DEXAMPLE_DIR=… -DWORK_DIR=… [-DCXX_COMPILER=… -DCXX_FLAGS=…] -P run_example.cmake
# CXX_COMPILER and CXX_FLAGS carry the tree's compiler and sanitizer flags, which a sanitized library
# needs at the user's compile and link as well.
foreach(step
    "install;${CMAKE_COMMAND};--install;${BUILD_DIR};--prefix;${WORK_DIR}/prefix"
    "configure;${CMAKE_COMMAND};-S;${EXAMPLE_DIR};-B;${WORK_DIR}/build;-G;Ninja;-DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix;-DCMAKE_CXX_COMPILER=${CXX_COMPILER};-DCMAKE_CXX_FLAGS=${CXX_FLAGS};-DCMAKE_EXE_LINKER_FLAGS=${CXX_FLAGS}"
    "build;${CMAKE_COMMAND};--build;${WORK_DIR}/build"
    "test;${CMAKE_CTEST_COMMAND};--test-dir;${WORK_DIR}/build;--output-on-failure")
  list(POP_FRONT step name)
  execute_process(COMMAND ${step} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "example ${name} failed (${rc}):\n${out}")
  endif()
  message(STATUS "example ${name}: ok")
endforeach()
