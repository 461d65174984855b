# cladbench_add_model(<name> <source.cpp>): your own model (cpp/model/cladbench_model.hpp) as the
# shared library lib<name>.so, compiled with the Clad plugin as cladbench.compile_model compiles it
# from Python (cladbench/clad_compile.py: TBR, porting hints, the project's headers, the BLAS of
# libtorch_cpu). A LibTorch program or a ROOT macro loads it with cladbench::load_model(path)
# (cpp/torch/user_model.hpp; the path is $<TARGET_FILE:<name>>), Python with
# cladbench.user_model.load_model. Needs Clad (cladbench_find_clad, clad.cmake) and Torch found.
function(cladbench_add_model name source)
  if(NOT CLAD_FOUND)
    message(FATAL_ERROR "cladbench_add_model(${name}): Clad writes the model's gradients and was not found: ${CLAD_REASON}")
  endif()
  add_library(${name} SHARED "${source}")
  target_include_directories(${name} PRIVATE "${CLADBENCH_SOURCE_DIR}/model" "${CLADBENCH_SOURCE_DIR}/onnx"
                                             "${CLADBENCH_SOURCE_DIR}/kernels")
  target_compile_options(${name} PRIVATE -I${CLAD_PREFIX}/include -fplugin=${CLAD_PREFIX}/lib/clad.so
                         "SHELL:-Xclang -plugin-arg-clad -Xclang -enable-tbr"
                         "SHELL:-Xclang -plugin-arg-clad -Xclang -fclad-porting-hints" -Wno-unused-variable)
  target_link_libraries(${name} PRIVATE "${TORCH_INSTALL_PREFIX}/lib/libtorch_cpu.so")
  # Clad only warns where its gradient is wrong (a call it takes as 0, a statement it skips): the
  # launcher fails the compile there, as cladbench.compile_model does (cladbench/clad_compile.py).
  set_target_properties(${name} PROPERTIES BUILD_RPATH "${TORCH_INSTALL_PREFIX}/lib" CXX_COMPILER_LAUNCHER
                        "${CMAKE_COMMAND};-E;env;PYTHONPATH=${CLADBENCH_SOURCE_DIR}/../src;${Python_EXECUTABLE};-m;cladbench.clad_compile")
endfunction()
