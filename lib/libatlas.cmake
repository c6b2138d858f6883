# The installable libatlas: the runtime (atlas/runtime.hpp, atlas/atlas.h) and the patch loader
# (atlas/patch/loader.hpp), as libatlas.so.0 and libatlas.a, with the public headers, atlas.pc
# and a CMake package (find_package(atlas): atlas::atlas, atlas::atlas_static). The objects are
# those the project's own archives hold (atlas_runtime_objects, atlas_patch_reader_objects,
# atlas_loader_objects): nothing is compiled twice. docs/live-patching.md, "Installing libatlas".
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)
find_package(fmt REQUIRED)
find_package(OpenSSL REQUIRED COMPONENTS Crypto)
find_package(Threads REQUIRED)

set(ATLAS_LIB_OBJECTS
  $<TARGET_OBJECTS:atlas_runtime_objects>
  $<TARGET_OBJECTS:atlas_patch_reader_objects>
  $<TARGET_OBJECTS:atlas_loader_objects>)
# What those objects need at link time: the installed atlas.pc (Libs.private) and the static
# target's link interface name the same libraries.
set(ATLAS_LIB_DEPS PkgConfig::LIBELF OpenSSL::Crypto fmt::fmt ${ZYDIS_LIBRARY} ${CMAKE_DL_LIBS}
  Threads::Threads)
set(ATLAS_LIB_DEPS_INSTALLED elf crypto fmt Zydis ${CMAKE_DL_LIBS})

add_library(atlas_shared SHARED ${ATLAS_LIB_OBJECTS})
set_target_properties(atlas_shared PROPERTIES OUTPUT_NAME atlas EXPORT_NAME atlas
  VERSION ${PROJECT_VERSION} SOVERSION 0
  LINK_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/libatlas.map)
target_link_libraries(atlas_shared PRIVATE ${ATLAS_LIB_DEPS})
target_link_options(atlas_shared PRIVATE
  -Wl,--version-script=${CMAKE_CURRENT_SOURCE_DIR}/libatlas.map -Wl,-z,now)
if(NOT ATLAS_SANITIZE) # sanitizer runtimes are resolved from the executable
  target_link_options(atlas_shared PRIVATE -Wl,--no-undefined)
endif()

add_library(atlas_static STATIC ${ATLAS_LIB_OBJECTS})
set_target_properties(atlas_static PROPERTIES OUTPUT_NAME atlas EXPORT_NAME atlas_static)
list(TRANSFORM ATLAS_LIB_DEPS PREPEND "$<BUILD_INTERFACE:" OUTPUT_VARIABLE build_deps)
list(TRANSFORM build_deps APPEND ">")
list(TRANSFORM ATLAS_LIB_DEPS_INSTALLED PREPEND "$<INSTALL_INTERFACE:" OUTPUT_VARIABLE install_deps)
list(TRANSFORM install_deps APPEND ">")
target_link_libraries(atlas_static INTERFACE Threads::Threads ${build_deps} ${install_deps})

foreach(t atlas_shared atlas_static)
  target_include_directories(${t} INTERFACE
    $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_compile_features(${t} INTERFACE cxx_std_20) # the C++ headers use std::span
endforeach()

install(TARGETS atlas_shared atlas_static EXPORT atlasTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
# lib/include holds the public headers only (the internal ones live in lib/internal and
# lib/patch/atlas/patch).
install(DIRECTORY include/atlas DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

set(ATLAS_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/atlas)
install(EXPORT atlasTargets NAMESPACE atlas:: DESTINATION ${ATLAS_CMAKE_DIR})
configure_package_config_file(atlasConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/atlasConfig.cmake INSTALL_DESTINATION ${ATLAS_CMAKE_DIR})
# 0.x: a minor version may break the API, so only the same minor version is compatible.
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/atlasConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/atlasConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/atlasConfigVersion.cmake DESTINATION ${ATLAS_CMAKE_DIR})

# atlas.pc finds its prefix from where it lies (${pcfiledir}), so that the prefix given to
# `cmake --install --prefix` need not be the one configured.
file(RELATIVE_PATH ATLAS_PC_TO_PREFIX /p/${CMAKE_INSTALL_LIBDIR}/pkgconfig /p)
string(REGEX REPLACE "/$" "" ATLAS_PC_TO_PREFIX "${ATLAS_PC_TO_PREFIX}")
list(JOIN ATLAS_LIB_DEPS_INSTALLED " -l" ATLAS_PC_LIBS_PRIVATE)
set(ATLAS_PC_LIBS_PRIVATE "-l${ATLAS_PC_LIBS_PRIVATE} -lpthread -lstdc++")
configure_file(atlas.pc.in ${CMAKE_CURRENT_BINARY_DIR}/atlas.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/atlas.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# The programs that go with it: the preload library, the CLI (tools/CMakeLists.txt).
install(TARGETS atlas_preload LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
