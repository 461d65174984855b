# Runs Clad as a source generator (cmake -P): compiles SOURCE with the Clad plugin and
# -fgenerate-source-file, only to make Clad write the derivatives it generates, and saves them as
# OUTPUT. With PREFIX set, every function definition gets that prefix (e.g. CLADBENCH_HD, which
# makes them __host__ __device__ for nvcc). Clad prints each derivative from column 0 and its
# body indented, so a line that starts with a letter starts a definition.
#   cmake -DCXX=clang++-19 -DCLAD_PREFIX=/opt/clad -DSOURCE=f.cpp -DINCLUDES="a;b" -DOUTPUT=f.inc
#         [-DPREFIX=CLADBENCH_HD] -P clad_source.cmake
get_filename_component(workdir "${OUTPUT}.clad" ABSOLUTE)
file(REMOVE_RECURSE "${workdir}")
file(MAKE_DIRECTORY "${workdir}")  # Clad writes Derivatives.cpp into the working directory, appending
set(include_flags "")
foreach(dir IN LISTS INCLUDES)
  list(APPEND include_flags "-I${dir}")
endforeach()
execute_process(
  COMMAND "${CXX}" -std=c++20 -fsyntax-only -I${CLAD_PREFIX}/include ${include_flags}
          -fplugin=${CLAD_PREFIX}/lib/clad.so -fplugin-arg-clad--fgenerate-source-file
          -fplugin-arg-clad--enable-tbr "${SOURCE}"
  WORKING_DIRECTORY "${workdir}" RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR NOT EXISTS "${workdir}/Derivatives.cpp")
  message(FATAL_ERROR "Clad could not write the derivatives of ${SOURCE}:\n${err}")
endif()
file(STRINGS "${workdir}/Derivatives.cpp" lines)
set(text "// Written by Clad from ${SOURCE} at build time (cpp/cmake/clad_source.cmake). Do not edit.\n")
foreach(line IN LISTS lines)
  if(PREFIX AND line MATCHES "^[A-Za-z]")
    set(line "${PREFIX} ${line}")
  endif()
  string(APPEND text "${line}\n")
endforeach()
file(WRITE "${OUTPUT}" "${text}")
