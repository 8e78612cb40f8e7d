# ccache as the compiler launcher, with the sloppiness that lets it cache translation units
# that use a precompiled header.
if(KPRIOR_USE_CCACHE)
  find_program(KPRIOR_CCACHE ccache)
  if(KPRIOR_CCACHE)
    set(_launcher ${CMAKE_COMMAND} -E env
      CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
      ${KPRIOR_CCACHE})
    set(CMAKE_CXX_COMPILER_LAUNCHER ${_launcher})
    set(CMAKE_C_COMPILER_LAUNCHER ${_launcher})
    message(STATUS "kprior: compiling through ccache (${KPRIOR_CCACHE})")
  endif()
endif()

# One precompiled <torch/torch.h> shared by every target that compiles LibTorch code. It lives
# in its own target that links torch alone, so no other dependency's compile definitions
# (HDF5 adds several) are baked into it: GCC refuses a PCH whose macros differ from the user's.
if(KPRIOR_USE_PCH)
  add_library(kprior_pch OBJECT ${PROJECT_SOURCE_DIR}/cmake/pch_anchor.cpp)
  target_link_libraries(kprior_pch PRIVATE torch OpenMP::OpenMP_CXX)
  target_compile_features(kprior_pch PRIVATE cxx_std_17)
  set_target_properties(kprior_pch PROPERTIES POSITION_INDEPENDENT_CODE OFF)
  # Same warning flags as every user of the PCH: -Wpedantic changes predefined macros.
  target_compile_options(kprior_pch PRIVATE -fPIC -Wall -Wextra -Wpedantic)
  target_precompile_headers(kprior_pch PRIVATE <torch/torch.h>)
endif()

function(kprior_reuse_pch target)
  if(KPRIOR_USE_PCH)
    # Executables would get -fPIE and GCC would reject a PCH built with -fPIC ("different
    # settings"); every target compiles with -fPIC instead (executables still link as PIE).
    set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE OFF)
    target_compile_options(${target} PRIVATE -fPIC)
    # -fopenmp defines _OPENMP, which the PCH was built with.
    target_link_libraries(${target} PRIVATE OpenMP::OpenMP_CXX)
    target_precompile_headers(${target} REUSE_FROM kprior_pch)
  endif()
endfunction()

# Warnings for our own code; torch headers come in as system includes through the target.
function(kprior_warnings target)
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
  endif()
endfunction()
