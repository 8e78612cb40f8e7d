# Finds every dependency of the project. Used by the build and mirrored (find_dependency)
# in kpriorConfig.cmake.in for downstream projects.

find_package(Torch REQUIRED)
find_package(Threads REQUIRED)
# at::parallel_for is inline (#pragma omp) in LibTorch's OpenMP builds: without OpenMP in our
# own translation units, our parallel loops silently run on one thread.
find_package(OpenMP REQUIRED COMPONENTS CXX)
find_package(ZLIB REQUIRED)
find_package(PNG REQUIRED)  # image grids (kprior::image)
find_package(JPEG REQUIRED)  # ImageNet-style JPEG trees (kprior::data; libjpeg-turbo's jpeglib.h)
# HDF5: COMPONENTS C CXX and both targets, or linking fails (see ENVIRONMENT.md).
find_package(HDF5 REQUIRED COMPONENTS C CXX)
find_package(fmt REQUIRED)
find_package(Eigen3 3.3 REQUIRED NO_MODULE)
find_package(nlohmann_json 3.9 REQUIRED)

if(KPRIOR_BUILD_APPS OR KPRIOR_BUILD_TESTS)
  find_package(CLI11 REQUIRED)  # the tests check apps/common/app_main.h too
endif()
if(KPRIOR_BUILD_TESTS)
  find_package(Catch2 REQUIRED)
  # Catch2 v3 provides Catch2::Catch2WithMain with its own main(); v2 (Debian 12) has the
  # same target name from 2.13.x. tests/catch.h picks the matching header.
endif()
# The benchmarks (bench/) are plain timing programs: no Google Benchmark to find.

# torch bundles its own fmt (v12 in pip torch 2.x) whose headers shadow the system's; the
# header-only target avoids link errors against the wrong fmt version on both machines.
set(KPRIOR_FMT_TARGET fmt::fmt-header-only)
