# Finding Clad, in one place: the build includes this file; `cladbench doctor` runs it as a script
# (cmake -DCXX=... -P clad.cmake) to report the same answer.
#
# Looks in order at CLAD_DIR (CMake variable or environment), the active conda prefix, then
# /usr/local and /opt/clad, for a prefix with lib/clad.so and include/clad/. Then checks that the
# plugin loads into the C++ compiler (a Clad build works only with the clang it was built for).
# Sets CLAD_FOUND, CLAD_PREFIX, CLAD_VERSION and CLAD_REASON (why not found).

function(cladbench_find_clad cxx)
  set(candidates ${CLAD_DIR} $ENV{CLAD_DIR} $ENV{CONDA_PREFIX} /usr/local /opt/clad)
  set(CLAD_FOUND FALSE PARENT_SCOPE)
  set(CLAD_VERSION "" PARENT_SCOPE)
  set(prefix "")
  foreach(dir IN LISTS candidates)
    if(EXISTS "${dir}/lib/clad.so" AND EXISTS "${dir}/include/clad/Differentiator/Differentiator.h")
      set(prefix "${dir}")
      break()
    endif()
  endforeach()
  if(NOT prefix)
    list(JOIN candidates ", " searched)
    set(CLAD_REASON "no lib/clad.so with include/clad/ under CLAD_DIR, the conda prefix, /usr/local or /opt/clad (searched: ${searched}); install it with `conda install -c conda-forge clad` or set CLAD_DIR" PARENT_SCOPE)
    return()
  endif()
  set(CLAD_PREFIX "${prefix}" PARENT_SCOPE)
  file(STRINGS "${prefix}/include/clad/Differentiator/Version.inc" version_line REGEX "CLAD_VERSION_STRING")
  string(REGEX REPLACE ".*\"(.*)\".*" "\\1" version "${version_line}")
  set(CLAD_VERSION "${version}" PARENT_SCOPE)

  # Does the plugin load into this compiler and differentiate?
  set(probe "${CMAKE_CURRENT_BINARY_DIR}/clad_probe.cpp")
  file(WRITE "${probe}" "#include \"clad/Differentiator/Differentiator.h\"\ndouble sq(double x) { return x * x; }\nint main() { return clad::differentiate(sq, 0).execute(3.0) == 6.0 ? 0 : 1; }\n")
  execute_process(
    COMMAND "${cxx}" -std=c++20 -fsyntax-only -I${prefix}/include -fplugin=${prefix}/lib/clad.so "${probe}"
    RESULT_VARIABLE rc ERROR_VARIABLE err OUTPUT_QUIET)
  if(NOT rc EQUAL 0)
    string(REGEX REPLACE "\n.*" "" first_line "${err}")
    set(CLAD_REASON "Clad ${version} at ${prefix} does not load into ${cxx} (a Clad build works only with the clang it was built against): ${first_line}" PARENT_SCOPE)
    return()
  endif()
  set(CLAD_FOUND TRUE PARENT_SCOPE)
  set(CLAD_REASON "" PARENT_SCOPE)
endfunction()

if(CMAKE_SCRIPT_MODE_FILE)  # cmake -DCXX=clang++-19 -P clad.cmake
  set(CMAKE_CURRENT_BINARY_DIR "$ENV{TMPDIR}")
  if(NOT CMAKE_CURRENT_BINARY_DIR)
    set(CMAKE_CURRENT_BINARY_DIR /tmp)
  endif()
  cladbench_find_clad("${CXX}")
  message("CLAD_FOUND=${CLAD_FOUND}")
  message("CLAD_PREFIX=${CLAD_PREFIX}")
  message("CLAD_VERSION=${CLAD_VERSION}")
  message("CLAD_REASON=${CLAD_REASON}")
endif()
